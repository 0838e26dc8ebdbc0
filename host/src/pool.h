/* pool.h - one run of a graph on the worker pool (private parts).
 *
 * Shared by pool.c (scheduling), job.c (one job's attempts) and run_end.c
 * (what the statuses mean once the workers are joined). A job's slot (record.h) is written only by
 * the worker that runs the job, and read by the calling thread after the
 * workers are joined.
 */
#ifndef DP_POOL_H
#define DP_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"
#include "dag.h"
#include "record.h"
#include "ticks.h"
#include "daggerpool/daggerpool.h"

/* A polling job waiting for its next probe, parked on the run's timer heap
 * (pool.c) instead of sleeping on a thread of its own. job.c embeds it as
 * the first member of the job's state. */
typedef struct dp_park {
    uint64_t due_ns;   /* its next step is due (probe, or the end of its wait) */
    uint64_t slack_ns; /* how late the step may run, so that due steps coalesce */
    uint32_t id;
    bool slow;         /* a probe of it took long: never run it on the time keeper */
} dp_park_t;

typedef struct dp_park_ent {
    uint64_t due_ns;
    dp_park_t *p;
} dp_park_ent_t;

typedef struct dp_run {
    dp_graph_t *g;
    dp_run_opts_t opts;
    dp_slotbuf_t *slotbuf;
    dp_slot_t *slots;        /* slotbuf->slot */
    /* Dependencies not yet success, per job: the one per-job word that
     * workers share. Dense (4 bytes a job, apart from the slots) so that
     * counting down a job's successors touches few cache lines. */
    _Atomic uint32_t *remaining;
    dp_ctx_t ctx;            /* the run: child of opts.parent, global timeout */
    uint64_t t0;             /* monotonic start (= a0.ns) */
    dp_tick_anchor_t a0;     /* where the slots' ticks start */
    /* Before this tick the run's deadline has surely not passed
     * (UINT64_MAX: no deadline): see dp__run_done. */
    uint64_t deadline_tick;
    /* A job that took fewer ticks than this is short: its worker may take
     * several ready jobs at a time (pool.c). */
    uint64_t short_ticks;
    /* Nothing watches single jobs (no store, no events, no per-job log
     * lines): a job without check or timeout may take the short path
     * through dp__job_execute. */
    bool plain;

    /* Ready queue (pool.c): each job enters at most once per run, so a
     * flat array of njobs + nworkers slots with two counters is enough. */
    _Atomic uint32_t *queue;
    _Atomic size_t qtail;    /* next slot a producer reserves */
    _Atomic size_t qhead;    /* next ticket an idle worker takes */
    struct worker_arg *workers; /* room for nworkers */
    unsigned nworkers;       /* at most this many: max_concurrent_jobs, at most one a job */
    _Atomic unsigned nstarted; /* worker slots taken (threads started on demand, pool.c) */

    _Atomic size_t pending;  /* jobs queued or running */
    atomic_bool stop;        /* workers exit (done or cancelled) */
    atomic_bool failfast;    /* a failure cancelled the run */
    int wake_fd;             /* eventfd: wakes the supervisor when done */

    /* Parked polling jobs (pool.c, "the bench"): a min-heap by due time,
     * and the workers that stand for them (one per parked job). */
    pthread_mutex_t pk_mu;
    pthread_cond_t pk_leader_cv;  /* the time keeper sleeps here */
    pthread_cond_t pk_follow_cv;  /* the other benched workers */
    dp_park_ent_t *pk_heap;       /* capacity nworkers (one per worker) */
    size_t pk_n;
    /* Jobs that park in due order (the common case: each re-parks a period
     * after its probe) go to a FIFO ring instead: O(1), and read in order. */
    dp_park_ent_t *pk_fifo;       /* capacity nworkers */
    size_t pk_fhead, pk_fn;
    uint64_t pk_sleep_until;      /* the time keeper sleeps until this; 0: awake */
    bool pk_leader;               /* a benched worker keeps the time */
    bool pk_closed;               /* stopping: nothing parks, everything is due */
} dp_run_t;

/* Whether the run is over (cancelled, timed out, failed fast), for the hot
 * path: the cancellation flags of the run's context chain, and the clock
 * only once `tick` (a recent dp__ticks reading, or 0 if the run has no
 * deadline) nears the deadline. Same answer as dp_ctx_done(&run->ctx). */
static inline bool dp__run_done(const dp_run_t *run, uint64_t tick)
{
    for (const dp_ctx_t *c = &run->ctx; c; c = c->parent)
        if (dp__ctx_own_err(c))
            return true;
    if (tick < run->deadline_tick)
        return false;
    return dp_ctx_done(&run->ctx);
}

/* A tick for dp__run_done: `recent` if not 0, a fresh one only when the run
 * has a deadline. */
static inline uint64_t dp__run_tick(const dp_run_t *run, uint64_t recent)
{
    if (run->deadline_tick == UINT64_MAX)
        return 0;
    return recent ? recent : dp__ticks();
}

/* Runs job `id` on worker `worker`: every attempt, readiness, retries with
 * backoff. Returns false when the job ended (its slot holds the final
 * status), true when it parked between two probes of a poll (see
 * dp__run_park; the rest of the job then runs through dp__job_probe and
 * dp__job_continue, on whichever benched worker picks it up). *clock is the
 * worker's latest tick (ticks.h) when only a few steps of bookkeeping (no
 * wait) separate it from this call, else 0; the job uses it as its start
 * instead of reading the clock again, and leaves its end there. */
bool dp__job_execute(dp_run_t *run, uint32_t id, unsigned worker, uint64_t *rng,
                     uint64_t *clock);

/* Parks a polling job until p->due_ns (pool.c). False: not parked (the
 * run is stopping, or no memory): the caller waits on its own thread.
 * Once parked, the job belongs to the bench: its caller must not touch it,
 * and returns to the pool, where its worker stands on the bench for it. */
bool dp__run_park(dp_run_t *run, dp_park_t *p);

/* A parked job whose step is due, on worker `worker` (*now_ns: a fresh
 * clock reading, and on return the clock after the step): runs that step
 * (one probe, or the end of the wait).
 * Returns true when it waits again: p->due_ns etc. say until when, and the
 * caller puts it back on the bench's heap. False: its poll is over and the
 * rest of the job must run on this thread through dp__job_continue. */
bool dp__job_probe(dp_run_t *run, dp_park_t *p, unsigned worker, uint64_t *now_ns);

/* Finishes the attempt whose poll dp__job_probe ended, and any retries.
 * Returns true when a later attempt parked, false when the job ended. */
bool dp__job_continue(dp_run_t *run, dp_park_t *p, unsigned worker, uint64_t *rng,
                      uint64_t *clock);

/* Logs a run-level message (job may be NULL). */
void dp__run_log(dp_run_t *run, dp_log_level_t level, const char *job, unsigned attempt,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Emits an event if the run has a callback. */
void dp__run_event(dp_run_t *run, dp_event_kind_t kind, uint32_t job, unsigned attempt,
                   unsigned worker, dp_status_t status, const char *error);

#endif /* DP_POOL_H */
