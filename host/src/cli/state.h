/* state.h - the command's durable state (docs/state.md): one SQLite file
 * per workflow with its runs, each job's end in each run, the last end of
 * each job (for --resume), manual marks and the store's entries.
 *
 * The library knows nothing of it: the command records what the library
 * reports (run events, the result, store changes through
 * dp_store_set_hook). Files: state.c (opening: location, lock, schema,
 * identity, refusals), state_schema.c (the schema and its migrations),
 * state_lock.c (one writer at a time), state_run.c (recording runs and the
 * store), state_hash.c (definition hashes), state_query.c (history, show,
 * the reuse set). The commands history.c, show.c and mark.c read and write
 * through these. */
#ifndef DP_CLI_STATE_H
#define DP_CLI_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daggerpool/daggerpool.h"

typedef struct console console_t;
typedef struct sqlite3 sqlite3;

/* The schema this command writes and the newest it reads. */
#define CLI_STATE_SCHEMA_VERSION 3
/* PRAGMA application_id of a daggerpool state file: "DPST". */
#define CLI_STATE_APP_ID 0x44505354
/* Runs kept per state file unless --keep-runs says otherwise. */
#define CLI_STATE_KEEP_RUNS_DEFAULT 100

/* The state flags of run, watch, mark, history, show, plan. */
typedef struct cli_state_flags {
    const char *path; /* --state; NULL: the default location */
    bool off;         /* --no-state */
    bool wait;        /* --wait: for the lock instead of refusing */
    bool keep_set;
    unsigned keep_runs; /* --keep-runs; 0: keep every run */
    bool resume;        /* --resume */
} cli_state_flags_t;

typedef struct cli_state cli_state_t;

/* The state's flags, for the getopt tables of the commands that take them
 * (each table lists its rows literally: tests/docs/man_flags.sh reads
 * them). cli_state_flag handles one: -1 when taken, else the exit code. */
enum {
    CLI_STATE_OPT_STATE = 0x1000,
    CLI_STATE_OPT_NO_STATE,
    CLI_STATE_OPT_WAIT,
    CLI_STATE_OPT_KEEP_RUNS,
    CLI_STATE_OPT_RESUME
};
int cli_state_flag(const char *cmd, int opt, const char *arg, cli_state_flags_t *f);
/* The flags' lines of --help (run and watch). */
#define CLI_STATE_HELP                                                                                                 \
    "  --state PATH         keep the workflow's state in PATH (default .daggerpool/BASE-HASH.db here; "                \
    "docs/state.md)\n"                                                                                                 \
    "  --no-state           keep no state: nothing recorded, nothing resumed, the store starts empty\n"                \
    "  --wait               wait for another process that holds the state instead of refusing\n"                       \
    "  --keep-runs N        keep the last N runs in the state (default 100; 0: all)\n"

/* The default location: .daggerpool/BASE-HASH.db in the current
 * directory, BASE the workflow file's name without its last extension,
 * HASH 8 hex digits of its absolute name (FNV-1a). malloc'd. */
char *cli_state_default_path(const char *wf_file);

/* Opens the state to write (run, watch, mark): takes the lock, checks the
 * file, creates or migrates the schema, checks that it is this workflow's
 * (name and file), and closes the runs a killed process left open. Returns
 * 0 with *out set, 0 with *out NULL when there is no state (--no-state, or
 * the location cannot be written: warned once, through con when not NULL),
 * or CLI_EXIT_INVALID when refused (said: a corrupt, foreign or newer file,
 * another workflow's, a lock held). wf_file and wf_name: the workflow. */
int cli_state_open(const char *cmd, const cli_state_flags_t *f, const char *wf_file, const char *wf_name,
                   console_t *con, cli_state_t **out);
/* Opens an existing state to read (history, show): no lock (WAL lets
 * readers in beside a writer). CLI_EXIT_INVALID when absent or refused. */
int cli_state_open_read(const char *cmd, const cli_state_flags_t *f, const char *wf_file, const char *wf_name,
                        cli_state_t **out);
void cli_state_close(cli_state_t *st);
const char *cli_state_path(const cli_state_t *st);
sqlite3 *cli_state_db(cli_state_t *st);

/* ---- state_hash.c ------------------------------------------------------ */

/* The definition hash of job id of g (a graph of wf: its built graph or
 * its shape), as hash version `version` computes it: a state keeps the
 * version it was made with (cli_state_def_hash_version). state_hash.c
 * says what it covers. */
uint64_t cli_state_def_hash(int version, const dp_workflow_t *wf, const dp_graph_t *g, size_t id);
/* Every job's, into out[dp_graph_job_count(g)]: the same values, in less
 * time for a whole graph (each name hashed once). False: out of memory. */
bool cli_state_def_hashes(int version, const dp_workflow_t *wf, const dp_graph_t *g, uint64_t *out);
/* The hash version a new state file gets; one made before it keeps 1, so
 * that an upgrade does not make every job look changed. */
#define CLI_STATE_DEF_HASH_NEW 2
/* The hash version of st's file: meta `def_hash` (1 where it is absent). */
int cli_state_def_hash_version(const cli_state_t *st);
/* The key under which the state keeps the definition hashes of wf's njobs
 * jobs (docs/state.md, "def_hashes"): this daggerpool's version and the
 * bytes of the workflow file and its @includes, as 32 hex digits. False
 * (no key: compute the hashes) when a file cannot be read or changed less
 * than two seconds before this process started, or since. */
#define CLI_STATE_DEFS_KEY_LEN 32
bool cli_state_defs_key(int version, const dp_workflow_t *wf, size_t njobs, char key[CLI_STATE_DEFS_KEY_LEN + 1]);

/* ---- state_run.c ------------------------------------------------------- */

/* Loads the saved store entries into store, then hooks the store so that
 * each later change is written through (entries under dp.running/, the
 * pool's snapshots of running jobs, are not kept). */
int cli_state_attach_store(cli_state_t *st, dp_store_t *store);
/* Detaches from the store (before either is freed). */
void cli_state_detach_store(cli_state_t *st, dp_store_t *store);

/* Starts recording a run of g (of wf) by command cmd: the run's row and a
 * writer thread that commits job ends in batches. False: the run goes
 * unrecorded (warned). */
bool cli_state_run_begin(cli_state_t *st, const char *cmd, const dp_workflow_t *wf, const dp_graph_t *g);
/* A dp_event_cb's work: records job ends and reused jobs (any thread). */
void cli_state_event(cli_state_t *st, const dp_event_t *ev);
/* Ends the run: the rest of the job ends, the jobs that did not run, the
 * plugin versions, the outcome and counts, the result's JSON text (exactly
 * what `run --json` writes), the jobs' last ends, and the retention. */
void cli_state_run_end(cli_state_t *st, const dp_result_t *r, const char *json, size_t json_len);
/* The same, the result's JSON made here (dp__render_json: what `run
 * --json` writes for workflow) straight into its compressed form, never
 * held whole: for a run that writes no --json of its own. */
void cli_state_run_end_render(cli_state_t *st, const dp_result_t *r, const char *workflow);

/* ---- state_query.c ----------------------------------------------------- */

/* The last `last` runs (0: all kept) as the JSON of `watch --listen`'s
 * /api/v1/runs: {"runs": [{id, command, start_ms, end_ms, duration_ms,
 * outcome, first_error, jobs, success, failed, not_ready, skipped, unknown,
 * reused}, ...]}, oldest first, with a final newline. NULL: no state, or it
 * could not be read. */
char *cli_state_runs_json(cli_state_t *st, unsigned last, size_t *len);
/* The previous run's durations as the critical path's weights: each job of
 * g (a graph of wf) that succeeded (and ran) in the last run that ended
 * gets its duration as its expected time (dp_graph_set_expected_ms), so
 * that ready jobs start longest remaining time first. Returns how many jobs
 * got one. Call it right before cli_state_run_begin of the same graph: the
 * key of the workflow's files it makes is that run's too. */
size_t cli_state_expected_durations(cli_state_t *st, const dp_workflow_t *wf, dp_graph_t *g);
/* The jobs --resume reuses: those whose last end was success (or that
 * were marked so) with the same definition hash, and whose dependencies
 * are all reused. reused: one bool per job of g. Returns how many. */
size_t cli_state_reuse_set(cli_state_t *st, const dp_workflow_t *wf, const dp_graph_t *g, bool *reused);
/* --resume's word for a plan (run, run --dry-run, plan): each job of wf's
 * whole graph that the state lets it reuse, as the plan's notes (cli.h;
 * malloc'd *notes, *nnotes of them). st NULL: none, with a warning. False
 * only when out of memory. */
typedef struct cli_job_note cli_job_note_t;
bool cli_state_resume_notes(cli_state_t *st, const dp_workflow_t *wf, console_t *con, cli_job_note_t **notes,
                            size_t *nnotes);
/* mark: records (who, when) and sets or clears job's success. */
int cli_state_mark(cli_state_t *st, const char *job, bool success, uint64_t hash, const char *who);
/* history: one line per run, then the marks. */
int cli_state_history(cli_state_t *st, FILE *out, unsigned last);
/* show: run (0: the last) as a summary, or its JSON text as recorded. */
int cli_state_show(cli_state_t *st, FILE *out, int64_t run, bool json);

#endif /* DP_CLI_STATE_H */
