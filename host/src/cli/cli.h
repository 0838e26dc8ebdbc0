/* cli.h - the daggerpool command: one file per subcommand (run.c,
 * validate.c, graph.c, plugins.c), dispatched from main.c, sharing what is
 * declared here (common.c, console.c, trace.c, signals.c). A new subcommand
 * is one more file and one more row in main.c's table. */
#ifndef DP_CLI_H
#define DP_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "daggerpool/daggerpool.h"
#include "plan.h"
#include "render.h"

/* Exit codes (DESIGN.md "The command"): never renumbered. The run outcomes
 * share dp_run_outcome_t's values. */
enum {
    CLI_EXIT_SUCCESS = 0,
    CLI_EXIT_FAILED = 1,
    CLI_EXIT_INVALID = 2, /* invalid input: nothing ran */
    CLI_EXIT_NOT_READY = 3,
    CLI_EXIT_TIMEOUT = 4,
    CLI_EXIT_INTERRUPTED = 130
};

/* Subcommands: argv[0] is the subcommand's name; return the exit code. */
int cli_run(int argc, char **argv);
int cli_validate(int argc, char **argv);
int cli_graph(int argc, char **argv);
int cli_plugins(int argc, char **argv);
int cli_watch(int argc, char **argv);
/* The durable state's commands (history.c, show.c, mark.c; state.h). */
int cli_history(int argc, char **argv);
int cli_show(int argc, char **argv);
int cli_mark(int argc, char **argv);
int cli_plan(int argc, char **argv);

/* ---- plan.c ------------------------------------------------------------ */

/* What the state code (--resume) says of one job, by name: whether a run
 * would reuse it (its earlier success stands), and why, or why not (a
 * reason the plan shows; NULL: nothing to say). */
typedef struct cli_job_note {
    const char *job;
    bool reuse;
    const char *reason;
} cli_job_note_t;

/* What a run or a plan takes besides the file: the targets (job names as
 * given on the command line, repeats allowed; none: every job) and the
 * state code's notes (NULL: nothing reused). The strings must outlive the
 * plan made of it. */
typedef struct cli_selection {
    char **targets;
    size_t ntargets;
    const cli_job_note_t *notes;
    size_t nnotes;
} cli_selection_t;

/* The plan of sel over wf (built; its whole graph, dp__workflow_full_graph):
 * the jobs the run would run in waves, reuse or leave out. A target that is
 * empty or names no job is refused (each one, "FILE: no job 'X' ...; did
 * you mean 'Y'?", as cmd): false, exit 2. A note on a job the file does not
 * have is ignored. Free the plan with dp__plan_free. */
bool cli_plan_make(const char *cmd, const dp_workflow_t *wf, const cli_selection_t *sel, dp_plan_t *plan);

/* ---- common.c ---------------------------------------------------------- */

/* Prints "daggerpool CMD: message; try 'daggerpool CMD --help'" to stderr
 * and returns CLI_EXIT_INVALID. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a count for -j; false when it is not an integer in [min, max]. */
bool cli_parse_uint(const char *text, unsigned min, unsigned max, unsigned *out);

/* The plugin search path in DESIGN.md's order: the workflow's plugin_path
 * (wf may be NULL), then the --plugin-path directories, then
 * DAGGERPOOL_PLUGIN_PATH, then lib/daggerpool/plugins beside the command's
 * bin/. */
void cli_plugin_search_path(dp_plugins_t *pl, const dp_workflow_t *wf, char **dirs, size_t ndirs);

/* The workflow in `file` read, checked and built with pl (its search path
 * set as above), as validate and plan do: NULL with every problem printed
 * to stderr. err: a buffer of 16384 bytes. */
dp_workflow_t *cli_workflow_build(const char *file, dp_plugins_t *pl, char **dirs, size_t ndirs, char *err);

/* The flags that run and watch both take over the workflow's settings. */
typedef struct cli_run_flags {
    unsigned jobs; /* -j; 0: from the file */
    bool timeout_set;
    uint64_t timeout_ms; /* --timeout */
    bool keep_going;     /* --keep-going */
} cli_run_flags_t;

/* opts from the workflow's settings, then the flags over them. */
void cli_run_opts(const dp_workflow_t *wf, const cli_run_flags_t *flags, dp_run_opts_t *opts);

/* Refuses --plugin-path values that are not directories (exit 2 early
 * rather than a puzzling "plugin not found" later). */
bool cli_check_dirs(const char *cmd, char **dirs, size_t ndirs);

/* Call before a workflow file is first read: for a large file (4 MiB and
 * more), readies the process's heap for libconfig's tree (common.c says
 * how and why); nothing for a smaller one. The command's own business:
 * it tunes malloc for the whole process, which a library must not do. */
void cli_heap_for_workflow(const char *path);
/* Call once the workflow is loaded (its libconfig tree freed): malloc as
 * usual again for what follows, bar the reserved heap. */
void cli_heap_loaded(void);
/* For a long-lived process (watch), once the workflow is built: give back
 * what is left of the reserved heap and trim it as usual from then on. */
void cli_heap_settle(void);

/* Appends to a growable argv-style list; false when out of memory. */
bool cli_list_push(char ***list, size_t *n, char *item);

/* ---- console.c --------------------------------------------------------- */

/* Everything written to stderr while a run is live: leveled logs (text or
 * JSON lines) and progress (a ninja-style status line on a terminal, one
 * line per job event otherwise), serialised by one lock so that lines never
 * interleave. */
typedef struct console console_t;

typedef enum { CLI_LOG_TEXT, CLI_LOG_JSON } cli_log_format_t;

console_t *console_new(FILE *out, cli_log_format_t format, dp_log_level_t level, bool progress);
void console_free(console_t *c);
/* Starts progress over the jobs of g (validated). */
void console_begin(console_t *c, const dp_graph_t *g);
/* A dp_log_cb: user is the console. Any thread. */
void console_log_cb(void *user, const dp_log_record_t *rec);
/* A run-level message of the command itself. Any thread. */
void console_logf(console_t *c, dp_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* One run event (progress). Any thread. */
void console_event(console_t *c, const dp_event_t *ev);
/* Clears the status line; progress stops. */
void console_end(console_t *c);
/* --log-format: "text" or "json". */
bool cli_parse_log_format(const char *text, cli_log_format_t *out);
/* A JSON log line (no newline; malloc'd, NULL when out of memory): time
 * (ISO 8601 UTC of time_ns, CLOCK_REALTIME), level, job, attempt (0: null),
 * plugin, message, and event when not NULL. The one shape of every line of
 * --log-format json: logs, progress events, the command's own messages. */
char *cli_json_line(uint64_t time_ns, dp_log_level_t level, const char *job, unsigned attempt, const char *plugin,
                    const char *message, const char *event);

/* ---- trace.c ----------------------------------------------------------- */

/* Writes the Chrome trace to out as the run goes (dp__render_trace_*): a
 * span when an attempt ends; memory does not grow with the attempts. */
typedef struct trace_rec trace_rec_t;

trace_rec_t *trace_rec_new(FILE *out, const dp_graph_t *g, const char *workflow);
void trace_rec_free(trace_rec_t *t);
/* Any event of the run. Any thread. */
void trace_rec_event(trace_rec_t *t, const dp_event_t *ev);
/* The attempts still open (the run was cut) and the end of the file;
 * after the run. DP_OK, DP_ENOMEM or DP_ESYS (a write failed). */
int trace_rec_finish(trace_rec_t *t);
/* The pool waits of the finished run r (each job's wait for its pool's
 * slots, before its first attempt) as spans on a track per pool. Before
 * trace_rec_finish. */
void trace_rec_pool_waits(trace_rec_t *t, const dp_result_t *r);

/* ---- signals.c --------------------------------------------------------- */

/* Routes SIGINT and SIGTERM to dp_ctx_cancel_from_signal(ctx) until
 * cli_signals_restore(); a second signal then ends the process as usual. */
int cli_signals_install(dp_ctx_t *ctx);
void cli_signals_restore(void);
/* With --log-format json: the handler's "interrupted" message is a JSON
 * log line too. */
void cli_signals_json(bool on);
/* The signal that cancelled, or 0. */
int cli_signals_caught(void);
/* Routes SIGHUP to dp_reloader_trigger(r) (r may be NULL) and to an eventfd
 * (cli_signals_hup_fd) that a loop can poll, until cli_signals_restore_hup. */
int cli_signals_install_hup(dp_reloader_t *r);
void cli_signals_restore_hup(void);
int cli_signals_hup_fd(void);
/* Whether SIGHUP came since the last call (drains the eventfd). */
bool cli_signals_hup_take(void);

/* Temporary files that a signal ending the process removes first (at most
 * 8 at once): the slot, or -1 when the table is full or the name too long.
 * While one is registered, SIGINT and SIGTERM without a run to cancel,
 * SIGHUP, SIGQUIT, SIGPIPE and SIGXFSZ remove them before the process dies
 * of the signal. */
int cli_tmp_register(const char *path);
void cli_tmp_forget(int slot);

/* ---- service_notify.c -------------------------------------------------- */

/* `watch` under systemd (Type=notify): NULL, and every call a no-op, when
 * $NOTIFY_SOCKET is not set. See service_notify.c for what is sent when. */
typedef struct cli_notify cli_notify_t;
cli_notify_t *cli_notify_open(console_t *con);
void cli_notify_close(cli_notify_t *n);
/* Between runs the loop calls cli_notify_alive at least this often (ms; 0
 * without a notifier), so that the watchdog sees it alive. */
uint64_t cli_notify_alive_every_ms(const cli_notify_t *n);
void cli_notify_alive(cli_notify_t *n);
/* A run starts (healthy until its timeout plus a grace; 0: no bound), and
 * ends with STATUS=status (READY=1 too after the first run). */
void cli_notify_run_start(cli_notify_t *n, uint64_t timeout_ms);
void cli_notify_run_end(cli_notify_t *n, const char *status);
/* SIGHUP: RELOADING=1, then READY=1 with STATUS=status once reloaded. */
void cli_notify_reloading(cli_notify_t *n);
void cli_notify_reloaded(cli_notify_t *n, const char *status);
void cli_notify_stopping(cli_notify_t *n);

/* ---- messages ---------------------------------------------------------- */

/* "daggerpool CMD: message" on stderr, on one line: control characters and
 * invalid UTF-8 escaped as the summary escapes them (dp__text_escape), since
 * the message may hold file, job and plugin names, which may hold any bytes. */
void cli_errorf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A message of the library that may span lines (one problem per line), each
 * line escaped as cli_errorf's. */
void cli_put_lines(FILE *out, const char *text);
/* From now on, cli_errorf and cli_put_lines write each message as a JSON
 * log line (cli_json_line, level error), as do the signal handlers: with
 * --log-format json, stderr is one JSON object per line. */
void cli_messages_json(void);

/* ---- files ------------------------------------------------------------- */

/* What a path names now, to tell whether two paths are one file: by device
 * and inode where it exists (symlinks followed), else by its resolved
 * absolute name (the directory's realpath and the last name, not
 * followed). */
typedef struct cli_file_id {
    bool exists;
    dev_t dev;
    ino_t ino;
    char *resolved; /* malloc'd; NULL when the directory does not resolve */
} cli_file_id_t;

void cli_file_id(const char *path, cli_file_id_t *id);
bool cli_same_file(const cli_file_id_t *a, const cli_file_id_t *b);
void cli_file_id_free(cli_file_id_t *id);

/* Opens a file the command reads (not the workflow) or appends to, only if
 * it is a regular file: a FIFO would block the open or the read forever, a
 * device or a directory is not what was meant. flags are open(2)'s
 * (O_RDONLY, or O_WRONLY|O_APPEND|O_CREAT). The fd, or -1 with a message
 * naming flag, the file, what it is and the fix. */
int cli_open_regular(const char *cmd, const char *flag, const char *path, int flags, const char *fix);

/* ---- output files ------------------------------------------------------ */

/* An output file written whole or not at all. out_file_check, before
 * anything runs, refuses a name that is empty, a directory, a device, a
 * FIFO, a socket or a symlink: the file is written as a new one renamed
 * over the name, which would replace such a thing (and a symlink is not
 * followed: in a shared directory it could point anywhere).
 * out_file_open creates the temporary file, TARGET.tmp.PID.XXXXXX (unique
 * per output) next to it, and out_file_commit renames it into place,
 * unless what is at the name stopped being a regular file meanwhile.
 * "-" means stdout. */
typedef struct out_file {
    const char *path; /* as given */
    const char *flag; /* "--json", for messages */
    const char *what; /* "JSON result" */
    char *target;     /* id.resolved: what is renamed over */
    cli_file_id_t id;
    char *tmp;
    int slot; /* cli_tmp_register's */
    FILE *f;
    char *buf; /* f's buffer (1 MiB) */
} out_file_t;

bool out_file_check(out_file_t *o, const char *cmd, const char *flag, const char *what, const char *path);
bool out_file_open(out_file_t *o, const char *cmd);
/* Renames into place (or flushes stdout); false with a message on failure. */
bool out_file_commit(out_file_t *o, const char *cmd);
/* Removes the temporary file if it was not committed; frees o's memory. */
void out_file_discard(out_file_t *o);

#endif /* DP_CLI_H */
