/* run.h - one run of a graph: the state that its parts share (run.c sets
 * it up and tears it down; pool.c runs the workers, job.c one job's
 * attempts, queue.c and park.c the ready and the parked jobs, run_end.c
 * the verdict).
 *
 * Each field says who may touch it:
 *   init     set by dp__run_create before any worker starts, then only read
 *            (until dp__run_destroy, after every worker is joined)
 *   atomic   any thread, through the atomics (the orders are written at
 *            each use, with why)
 *   job      per job: only the thread running that job writes it (a job is
 *            on one thread at a time: a worker, or the lot while parked);
 *            read by the run's end after the workers are joined
 *   pool     only pool.c
 *   own lock the part's own rules (queue.h, park.h, ctx.h)
 */
#ifndef DP_RUN_H
#define DP_RUN_H

#include <stddef.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"
#include "dag.h"
#include "park.h"
#include "queue.h"
#include "record.h"
#include "ticks.h"
#include "daggerpool/daggerpool.h"

/* The size of a dp_run_opts_t of the 1.0 header: it ended after `seed`. */
#define DP__RUN_OPTS_SIZE_1_0 (offsetof(dp_run_opts_t, seed) + sizeof(uint64_t))

struct dp_worker; /* pool.c */

typedef struct dp_run {
    dp_graph_t *g;         /* init; the run holds g->running */
    dp_run_opts_t opts;    /* init (seed made if 0) */
    dp_slotbuf_t *slotbuf; /* init; its slots and sparse arrays: job. The run's end
                              * takes it (NULL after) */
    dp_slot_t *slots;      /* init: slotbuf->slot */
    /* Dependencies not yet success, per job (used only by jobs with two or
     * more): atomic. Dense (4 bytes a job, apart from the slots) so that
     * counting down a job's successors touches few cache lines. */
    _Atomic uint32_t *remaining;
    dp_ctx_t ctx;        /* init; own lock: the run's context, child of opts.parent,
                              * with the global timeout */
    uint64_t t0;         /* init: monotonic start (= a0.ns) */
    bool tsc;            /* init: the run's ticks are TSC readings (its clock) */
    dp_tick_anchor_t a0; /* init: where the slots' ticks start (a0.tsc = tsc) */
    /* init: before this tick the run's deadline has surely not passed
     * (UINT64_MAX: no deadline): see dp__run_done. */
    uint64_t deadline_tick;
    /* init: a job that took fewer ticks than this is short: its worker may
     * take several ready jobs at a time (pool.c). */
    uint64_t short_ticks;
    /* init: nothing watches single jobs (no store, no events, no per-job
     * log lines): a job without check or timeout may take the short path
     * through dp__job_execute. */
    bool plain;

    dp_queue_t queue;          /* own rules (queue.h); closed: the run is stopping */
    dp_parking_t park;         /* own lock (park.h); its ops set by pool.c at init */
    struct dp_worker *workers; /* init, then pool: room for nworkers */
    unsigned nworkers;         /* init: max_concurrent_jobs, at most one a job */
    _Atomic unsigned nstarted; /* atomic: worker slots taken (threads start on demand) */
    /* atomic: jobs that ended success, added by each worker as it leaves
     * (relaxed: read by the run's end after the join). All of them: the
     * run's end has nothing to look for in the slots. */
    _Atomic size_t succeeded;
    atomic_bool failfast; /* atomic: a failure cancelled the run */
    int wake_fd;          /* init: eventfd, wakes the supervisor when done */
    /* init: one reuse.h flag per job (DP_REUSE_YES: success from the start,
     * never run), or NULL when opts.reused is empty. The run's end hands it
     * to the record (NULL after). */
    unsigned char *reused;
    size_t nreused; /* init: jobs reused (DP_REUSE_YES) */
    /* init: each job's remaining path (prio.h), NULL when all are equal:
     * a worker goes on with its ready successor of the longest. */
    const uint32_t *rank;
    /* init: the graph has pools or priorities: the ready jobs and the
     * pools' slots (own lock, prio.h), and the queue carries tokens. */
    struct dp_sched *sched;
    /* Trigger rules (rules.h), for a graph that has them (g->has_rules). */
    bool rules;   /* init */
    uint8_t *why; /* init (rules only): per job, DP__WHY_*: job (written by
                   * the thread that decides or runs it). The run's end takes
                   * it (NULL after) */
    /* Set by the cleanup phase (rules.c), on the calling thread after the
     * workers are joined: what cut the run (its context's error and
     * whether fail-fast did), kept because that phase gives the run a new
     * context; cleanup_after is a DP__CLEANUP_* (0: no such phase ran). */
    int cut_err;
    int cleanup_after;
    /* init (NULL without opts.store); each entry: job. The store's
     * snapshots of the jobs in progress (snapshot.h). */
    struct dp_snapshots *snaps;
    /* atomic: jobs queued or running; 0 ends the run. Written by every
     * worker as it goes to the queue: a line of its own (queue.h). */
    _Alignas(64) _Atomic size_t pending; /* the last field: the struct's size pads its line */
} dp_run_t;

/* Sets up a run of g (validated, held by the caller through g->running)
 * with opts (max_concurrent_jobs >= 1): its slots and counters reset, its
 * queue holding the roots, its lot (the caller sets run->park.ops) and its
 * context, whose clock starts now. Reused jobs (opts.reused) are success
 * already, each announced by a DP_EV_JOB_REUSED event, and the queue holds
 * instead the jobs whose dependencies are all reused. No thread starts.
 * NULL with err on failure (nothing left to undo). */
dp_run_t *dp__run_create(dp_graph_t *g, const dp_run_opts_t *opts, char *err, size_t errlen);

/* Frees what dp__run_create made (every worker joined); the slots go back
 * to the graph unless the run's end took them. */
void dp__run_destroy(dp_run_t *run);

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
    return recent ? recent : dp__ticks(run->tsc);
}

/* Logs a run-level message (job may be NULL), if the run has a log
 * callback and the level passes. Any thread. */
void dp__run_log(dp_run_t *run, dp_log_level_t level, const char *job, unsigned attempt, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void dp__run_vlog(dp_run_t *run, dp_log_level_t level, const char *job, unsigned attempt, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

/* Emits an event if the run has a callback. Any thread. */
void dp__run_event(dp_run_t *run, dp_event_kind_t kind, uint32_t job, unsigned attempt, unsigned worker,
                   dp_status_t status, const char *error);
/* The same, for a job that ran ran_ns until now (the event's start_ns). */
void dp__run_event_ran(dp_run_t *run, dp_event_kind_t kind, uint32_t job, unsigned attempt, unsigned worker,
                       dp_status_t status, const char *error, uint64_t ran_ns);

#endif /* DP_RUN_H */
