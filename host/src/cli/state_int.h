/* state_int.h - what the state's files share (state.c, state_run.c,
 * state_query.c); the rest of the command uses state.h. */
#ifndef DP_CLI_STATE_INT_H
#define DP_CLI_STATE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "state.h"

/* A growing buffer; oom once an allocation failed (then nothing more is
 * added and the batch is not written). */
typedef struct state_buf {
    char *p;
    size_t n, cap;
    bool oom;
} state_buf_t;

/* A job end waiting for the writer. */
typedef struct state_end {
    uint32_t id;
    uint8_t status;
    bool reused; /* DP_EV_JOB_REUSED: success carried over, it did not run */
    unsigned attempts;
    uint64_t start_ns; /* the job's start + 1 (dp_event_t.start_ns); 0: none */
    uint64_t end_ns;   /* from the run's start */
    char *error;       /* malloc'd or NULL */
} state_end_t;

typedef struct state_ends {
    state_end_t *v;
    size_t n, cap;
} state_ends_t;

struct cli_state {
    char *path;
    const char *cmd;
    console_t *con; /* warnings go here when not NULL */
    int lock_fd;    /* -1 for a reader */
    sqlite3 *db;
    /* One user of db at a time: the main thread, the writer thread and
     * the store hook (on workers) take it. */
    pthread_mutex_t mu;
    bool broken;    /* a write failed (warned): nothing more is written */
    int wal_frames; /* pages in the log (WAL) after the last commit (sqlite3_wal_hook) */
    int page_size;  /* the file's (PRAGMA page_size) */
    int version;    /* the file's schema version (a reader may open an older one) */
    int def_hash;   /* its definition hash version (state_hash.c) */
    unsigned keep_runs;
    char host[256];

    /* The run being recorded. */
    int64_t run_id;
    const dp_graph_t *g;
    const dp_workflow_t *wf;
    size_t njobs;
    uint64_t *hash; /* definition hashes, once `hashed` (ensure_hashes) */
    bool hashed;
    unsigned char *recorded; /* the job has its row */
    /* job_last as the run starts, kept up to date by the writer: a job's
     * end is written there only when it changes it. last: 0 no row, else
     * 1 + the status, | LAST_MARKED for a manual mark. */
    unsigned char *last;
    uint64_t *last_hash;
    /* Per job, 1 + the duration (ms) of its success end recorded in this
     * run, 0 for none: the next run's expected durations (state_cache.c). */
    uint64_t *dur;
    /* The key of the workflow's files when the run's graph is the file's
     * whole graph (keyed): def_hashes' rows are found by it. */
    char key[CLI_STATE_DEFS_KEY_LEN + 1];
    bool keyed;
    /* The key cli_state_expected_durations made for the graph about to
     * run: cli_state_run_begin takes it instead of reading the files again. */
    char pre_key[CLI_STATE_DEFS_KEY_LEN + 1];
    bool pre_keyed;
    const dp_workflow_t *pre_wf;
    const dp_graph_t *pre_g;
    atomic_uint nreused;
    uint64_t run_start_ms; /* Unix ms */
    state_buf_t batch;     /* the writer's batch of ends being made */

    /* The run's ends as the workers publish them, without a lock: a
     * worker takes slot i = taken++ (one atomic add), fills it and sets
     * ready[i]; the writer commits the slots from `consumed` on, in order,
     * up to the first not ready yet. A slot per job: each job ends (or is
     * reused) once per run; an end beyond them goes to `queue`. */
    state_end_t *slots;
    atomic_uchar *ready;
    size_t nslots;
    atomic_size_t taken;
    size_t consumed;  /* the writer's (under qmu once the run is over) */
    bool writer_busy; /* the writer is committing slots (under qmu) */

    /* The writer: the slots and, under qmu, the ends that have no slot;
     * the writer commits them. */
    pthread_mutex_t qmu;
    pthread_cond_t qcv, qdone;
    state_ends_t queue;
    bool stop, writer_on, run_live;
    unsigned long flush_req, flush_done; /* flushes asked for and done */
    pthread_t writer;

    dp_store_t *store;
};

#define LAST_MARKED 0x80

/* 8 bytes, little-endian: how def_hashes' blobs hold numbers. */
static inline void state_put_le64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static inline uint64_t state_get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

/* The id of job name in g (of n jobs), tried first at hint: a lookup by
 * name costs a hash and a probe, a hint that is right one strcmp (the
 * rows read back come in the graph's order, or name their id). -1: none. */
static inline long state_job_id(const dp_graph_t *g, size_t n, const char *name, size_t hint)
{
    if (!name)
        return -1;
    if (hint < n && strcmp(dp_graph_job_name(g, hint), name) == 0)
        return (long)hint;
    return dp_graph_job_id(g, name);
}

/* ---- state_cache.c: job_last and the last run's durations, by id ------- */

/* The key of wf's files when g is its whole graph (false: none). */
bool state_run_key(const cli_state_t *st, const dp_workflow_t *wf, const dp_graph_t *g,
                   char key[CLI_STATE_DEFS_KEY_LEN + 1]);
/* What the state's last run kept for the njobs jobs of the files of key,
 * when nothing changed job_last since (malloc'd; NULL: read job_last and
 * the ends). Takes mu. */
unsigned char *state_cache_read(cli_state_t *st, const char *key, size_t njobs);
/* Job id's job_last code and hash, and 1 + its duration (0: none). */
void state_cache_last(const unsigned char *cache, size_t id, unsigned char *last, uint64_t *hash);
uint64_t state_cache_duration(const unsigned char *cache, size_t id);
/* Keeps st->last, last_hash and dur for the next run (keyed runs only).
 * In the run's last transaction, under mu, after job_last is written. */
int state_cache_keep(cli_state_t *st);

/* ---- state_ends.c: a batch of job ends as one JSON text ---------------- */

/* Appends one job's end to the batch in b. */
void state_ends_add(state_buf_t *b, const char *name, dp_status_t status, bool reused, unsigned attempts,
                    int64_t start_ms, int64_t duration_ms, const char *error, const char *plugin, uint64_t hash,
                    uint32_t id);
/* The batch's text (len bytes, not NUL-terminated), or NULL when out of
 * memory. b->n = 0 starts the next. */
const char *state_ends_finish(state_buf_t *b, size_t *len);

/* One record read back; name (NUL-terminated) in its own buffer, reused
 * from record to record. start_ms, duration_ms: -1 for null. */
typedef struct state_rec {
    state_buf_t name;
    dp_status_t status;
    bool reused;
    unsigned attempts;
    int64_t start_ms, duration_ms;
    uint64_t hash;
    size_t id; /* the job's id in the graph that wrote it (SIZE_MAX: not given) */
} state_rec_t;

/* Reads the record after p (the batch's text up to end: start at its
 * first byte, then at what the last call returned). NULL at the batch's
 * end or at a malformed record. */
const char *state_ends_next(const char *p, const char *end, state_rec_t *r);

/* The result's JSON text compressed (zstd, level 1), malloc'd, *zlen
 * bytes; NULL when out of memory. */
unsigned char *state_compress(const char *text, size_t len, size_t *zlen);
/* A stream that compresses what is written to it into one zstd frame
 * (level 1, as state_compress), so that the run's JSON result is never
 * held whole in memory. NULL when it cannot be made (*zo still goes to
 * state_zout_close). */
typedef struct state_zout state_zout_t;
FILE *state_zout_open(state_zout_t **zo);
/* Closes f (NULL allowed); the frame, malloc'd, *zlen bytes, of a text of
 * *len bytes; NULL when any write or the compression failed. Frees zo. */
unsigned char *state_zout_close(FILE *f, state_zout_t *zo, size_t *zlen, size_t *len);
/* The text of len bytes back from its zstd frame, malloc'd; NULL when the
 * frame is not that (corrupt) or out of memory. */
char *state_decompress(const void *z, size_t zlen, size_t len);

/* Warns once (through con, or on stderr) that the state stops being
 * written, and why; marks it broken. */
void state_broken(cli_state_t *st, const char *what, int rc);
/* Stops and joins the writer thread, committing what is queued
 * (state_run.c; cli_state_close calls it). */
void state_writer_stop(cli_state_t *st);
/* Unix milliseconds now. */
uint64_t state_now_ms(void);

#endif
