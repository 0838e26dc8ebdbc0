/* state_int.h - what the state's files share (state.c, state_run.c,
 * state_query.c); the rest of the command uses state.h. */
#ifndef DP_CLI_STATE_INT_H
#define DP_CLI_STATE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "state.h"

/* A job end waiting for the writer. */
typedef struct state_end {
    uint32_t id;
    uint8_t status;
    bool reused; /* DP_EV_JOB_REUSED: success carried over, it did not run */
    unsigned attempts;
    uint64_t end_ns; /* from the run's start */
    char *error;     /* malloc'd or NULL */
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
    unsigned keep_runs;
    char host[256];

    /* The run being recorded. */
    int64_t run_id;
    const dp_graph_t *g;
    const dp_workflow_t *wf;
    size_t njobs;
    uint64_t *hash; /* definition hashes, once `hashed` (ensure_hashes) */
    bool hashed;
    uint64_t *start_ns;      /* first attempt's start, from the run's start; 0: none */
    unsigned char *recorded; /* the job has its row */
    /* job_last as the run starts, kept up to date by the writer: a job's
     * end is written there only when it changes it. last: 0 no row, else
     * 1 + the status, | LAST_MARKED for a manual mark. */
    unsigned char *last;
    uint64_t *last_hash;
    unsigned nreused;
    uint64_t run_start_ms; /* Unix ms */

    /* The writer: workers append ends under qmu, the writer commits them. */
    pthread_mutex_t qmu;
    pthread_cond_t qcv, qdone;
    state_ends_t queue;
    bool stop, writer_on, run_live;
    unsigned long flush_req, flush_done; /* flushes asked for and done */
    pthread_t writer;

    dp_store_t *store;
};

#define LAST_MARKED 0x80

/* Warns once (through con, or on stderr) that the state stops being
 * written, and why; marks it broken. */
void state_broken(cli_state_t *st, const char *what, int rc);
/* Stops and joins the writer thread, committing what is queued
 * (state_run.c; cli_state_close calls it). */
void state_writer_stop(cli_state_t *st);
/* Unix milliseconds now. */
uint64_t state_now_ms(void);

#endif
