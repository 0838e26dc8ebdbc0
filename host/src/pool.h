/* pool.h - one run of a graph on the worker pool (private parts).
 *
 * Shared by pool.c (scheduling), job.c (one job's attempts) and result.c
 * (what a finished run says).
 */
#ifndef DP_POOL_H
#define DP_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"
#include "dag.h"
#include "daggerpool/daggerpool.h"

/* Per-job state of a run. Written only by the worker that runs the job;
 * read by the calling thread after the workers are joined. */
typedef struct dp_slot {
    dp_status_t status;
    unsigned attempts;
    char *error;                /* malloc'd, or NULL */
    uint64_t start_ns, end_ns;  /* monotonic; 0 if never started */
    const char *version;        /* dp_job_set_version; not owned */
    int64_t requeue_ms;         /* hint for a re-run, -1 none */
} dp_slot_t;

typedef struct dp_run {
    dp_graph_t *g;
    dp_run_opts_t opts;
    dp_slot_t *slots;
    /* Dependencies not yet success, per job: the one per-job word that
     * workers share. Dense (4 bytes a job, apart from the slots) so that
     * counting down a job's successors touches few cache lines. */
    _Atomic uint32_t *remaining;
    dp_ctx_t ctx;            /* the run: child of opts.parent, global timeout */
    uint64_t t0;             /* monotonic start */

    /* Ready queue (pool.c): each job enters at most once per run, so a
     * flat array of njobs + nworkers slots with two counters is enough. */
    _Atomic uint32_t *queue;
    _Atomic size_t qtail;    /* next slot a producer reserves */
    _Atomic size_t qhead;    /* next ticket an idle worker takes */
    struct worker_arg *workers;
    unsigned nworkers;

    _Atomic size_t pending;  /* jobs queued or running */
    atomic_bool stop;        /* workers exit (done or cancelled) */
    atomic_bool failfast;    /* a failure cancelled the run */
    int wake_fd;             /* eventfd: wakes the supervisor when done */
} dp_run_t;

/* Runs job `id` to its final status in its slot: every attempt, readiness,
 * retries with backoff. Called on worker `worker`. *clock is the worker's
 * latest CLOCK_MONOTONIC reading when only a few steps of bookkeeping (no
 * wait) separate it from this call, else 0; the job uses it as its start
 * time instead of reading the clock again, and leaves its end time there. */
void dp__job_execute(dp_run_t *run, uint32_t id, unsigned worker, uint64_t *rng,
                     uint64_t *clock);

/* Logs a run-level message (job may be NULL). */
void dp__run_log(dp_run_t *run, dp_log_level_t level, const char *job, unsigned attempt,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Emits an event if the run has a callback. */
void dp__run_event(dp_run_t *run, dp_event_kind_t kind, uint32_t job, unsigned attempt,
                   unsigned worker, dp_status_t status, const char *error);

/* Builds the result of a finished run; moves the slots' error strings into it
 * (the slots themselves stay with the graph for the next run). */
dp_result_t *dp__result_build(dp_run_t *run);

#endif /* DP_POOL_H */
