/* pool.c - running a graph on a bounded pool of worker threads (pool.h).
 *
 * max_concurrent_jobs workers (at most one per job) take ready jobs; a job
 * that waits (a readiness poll between probes, a retry's backoff) parks in
 * the run's lot (park.c) and its worker stands by for it, so jobs in
 * flight, running or parked, never exceed the bound, and a waiting job
 * holds no thread of its own.
 *
 * Workers schedule by themselves: a worker that finishes a job decrements
 * each successor's remaining-dependency counter and, for every successor
 * that reaches zero, keeps the first to run next itself (no queue, no lock:
 * a chain runs on one thread without handing work around) and pushes the
 * others onto the ready queue (queue.c) in one batch. No thread relays
 * messages between workers, and the queue takes no lock.
 *
 * The calling thread supervises: it sleeps in poll(2) on an eventfd that the
 * last worker signals when nothing is queued or running, and on the run
 * context's fds, which turn readable on the global timeout, on cancellation
 * through the parent context (also from a signal handler), or on fail-fast.
 * On cancellation it closes the queue (idle workers wake and leave) and the
 * lot (parked jobs end at once); busy workers finish their job (which sees
 * its context done) and leave.
 *
 * Worker threads start on demand: one per root at first (at most the
 * bound), then more whenever jobs are published that no idle worker has
 * claimed, or a worker's job parks while jobs wait. A chain runs on one
 * thread however high max_concurrent_jobs is. With an executor
 * (executor.h) a worker starts on one of its idle kept threads, and only
 * when none is idle on a thread of the run's own.
 *
 * Memory orders: the queue's handshake is in queue.c; `pending` below. A
 * job's slot and error are written by the thread that runs it and read by
 * the next job's thread through the queue's release/acquire, or by the
 * run's end after the join.
 */
#include "pool.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor.h"
#include "job.h"
#include "park.h"
#include "queue.h"
#include "record.h"
#include "result.h"
#include "run.h"
#include "rules.h"
#include "run_end.h"
#include "prio.h"
#include "util.h"

/* A worker's thread, as its starter and the joiner see it: W_RUNNING a
 * thread of the run's own (joined), W_KEPT one of the executor's (waited
 * for through the executor). */
enum { W_STARTING, W_RUNNING, W_KEPT, W_NONE };

typedef struct dp_worker {
    dp_run_t *run;       /* set by the starter before the thread exists */
    unsigned index;      /* ditto */
    pthread_t thread;    /* written by pthread_create in the starter */
    dp_exec_task_t task; /* W_KEPT: what the executor's thread runs */
    /* W_STARTING until the starter knows whether the thread exists, then
     * W_RUNNING, W_KEPT or W_NONE. Release by the starter, acquire by the
     * joiner: publishes `thread`. */
    _Atomic int state;
} dp_worker_t;

/* What a worker keeps on its stack, and hands to the lot so that a parked
 * job's rest runs with it (resume_job). */
typedef struct wstate {
    unsigned index;
    uint64_t rng;   /* backoff jitter (job.c) */
    uint64_t clock; /* last tick read (ticks.h), 0 when stale */
} wstate_t;

/* Ready jobs a worker took from the queue and has not run yet, and what it
 * has yet to tell `pending`. After a short job a worker takes several at
 * once (at most a 2 * nworkers-th of what is queued, queue.c): fewer
 * takes, fewer writes of the queue's head and of `pending`, each a cache
 * line another worker wants (two workers on no-op jobs: 16 -> 64 took
 * independent from 25.8 to 19.9 ns a job, 64 -> 256 from 24.7 to 12.8,
 * bench/README.md, "Session 14" and "Session 15"). As many as the worker
 * expects to run in the time POP_HELD jobs just short of short_ticks would
 * take (the last job's ticks tell), up to POP_MAX: jobs it holds wait
 * for it, whatever idle workers there are, so it holds no more expected
 * work than before for jobs near the threshold. A run of pool lines takes
 * at most POP_HELD, one with a priority POP_MAX_ORDERED: the jobs a worker
 * holds are out of the scheduler's order, and a carry is as long. */
#define POP_MAX 256
#define POP_HELD 64
#define POP_MAX_ORDERED 16

typedef struct taken {
    uint32_t ids[POP_MAX];
    size_t max;    /* taken at once at most: POP_MAX, POP_HELD or POP_MAX_ORDERED */
    uint64_t held; /* POP_HELD short jobs' ticks (run->short_ticks each) */
    uint64_t last; /* the last job's ticks, when short_job */
    size_t i, n;
    /* Jobs this worker ended since it last told `pending`: told in one
     * subtraction when it next goes to the queue (its untaken jobs keep
     * `pending` above zero meanwhile). */
    size_t ended;
    bool short_job; /* the last job took < run->short_ticks */
} taken_t;

/* Successors made ready at once are pushed in batches of this many. */
#define BATCH 64

/* A worker reuses the end time of its last job as the start of its next one
 * only when at most this many successors were counted down in between (and
 * it did not wait): the bookkeeping then takes well under a microsecond, far
 * below the millisecond precision of results. After a job with many
 * successors (a fan's source) the clock is read again. */
#define CLOCK_REUSE_MAX_SUCCS 64

static void *worker_main(void *p);

/* Starts up to `want` more workers, never more than nworkers in all; from
 * the calling thread or a worker. Returns how many started. */
static unsigned start_workers(dp_run_t *run, unsigned want)
{
    unsigned done = 0;
    while (done < want) {
        unsigned i = atomic_load_explicit(&run->nstarted, memory_order_relaxed);
        do {
            if (i >= run->nworkers)
                return done;
            /* Seq_cst: dp__queue_close reads nstarted after closing; a
             * worker counted after that read starts after it (queue.c). */
        } while (!atomic_compare_exchange_weak_explicit(&run->nstarted, &i, i + 1, memory_order_seq_cst,
                                                        memory_order_relaxed));
        dp_worker_t *w = &run->workers[i];
        w->run = run;
        w->index = i;
        /* A kept thread of the executor if one is idle (no thread to
         * create), else a thread of the run's own. */
        int st = W_NONE;
        w->task = (dp_exec_task_t){.fn = worker_main, .arg = w};
        if (run->opts.executor && dp__executor_start(run->opts.executor, &w->task))
            st = W_KEPT;
        else if (pthread_create(&w->thread, NULL, worker_main, w) == 0)
            st = W_RUNNING;
        atomic_store_explicit(&w->state, st, memory_order_release);
        if (st == W_NONE)
            break; /* no more threads: the running workers carry on */
        done++;
    }
    return done;
}

/* More workers when ready jobs up to queue slot `tail` are not all claimed
 * by idle workers (each idle worker holds a ticket) and the bound allows. */
static void start_for_queue(dp_run_t *run, size_t tail)
{
    /* Relaxed: a hint; start_workers claims slots with its own CAS. */
    unsigned have = atomic_load_explicit(&run->nstarted, memory_order_relaxed);
    if (have >= run->nworkers)
        return;
    size_t unclaimed = dp__queue_unclaimed(&run->queue, tail);
    if (!unclaimed)
        return;
    unsigned room = run->nworkers - have;
    start_workers(run, unclaimed < room ? (unsigned)unclaimed : room);
}

static void wake_supervisor(dp_run_t *run)
{
    uint64_t one = 1;
    ssize_t r;
    do
        r = write(run->wake_fd, &one, sizeof one);
    while (r < 0 && errno == EINTR);
}

/* Stops the run's workers: idle ones wake and leave, standing ones empty
 * the lot and leave, busy ones leave after their job. Any thread;
 * idempotent. */
static void stop_workers(dp_run_t *run)
{
    dp__queue_close(&run->queue, &run->nstarted);
    dp__park_close(&run->park);
}

/* Publishes n ready jobs, and starts workers for them if the bound allows.
 * Always inlined: with publish_for_rules as a third caller the compiler
 * would otherwise make it a call in release_successors too. */
static inline __attribute__((always_inline)) void publish(dp_run_t *run, const uint32_t *ids, size_t n)
{
    /* Relaxed: the publishing worker has not told `pending` of its own job
     * yet, so the count cannot reach zero before these are in. */
    atomic_fetch_add_explicit(&run->pending, n, memory_order_relaxed);
    start_for_queue(run, dp__queue_push(&run->queue, ids, n));
}

/* publish for rules.c: a function of its own, so that publish itself is
 * never address-taken and stays inlined in release_successors (taking its
 * address made it a call there). */
static void publish_for_rules(dp_run_t *run, const uint32_t *ids, size_t n)
{
    publish(run, ids, n);
}

/* The worker's next job: one it took from the queue before, else from the
 * queue (after telling `pending` of the jobs it ended: the last to bring it
 * to zero ends the run). False: leave. */
static inline bool next_job(dp_run_t *run, const wstate_t *ws, taken_t *tk, uint32_t *id, bool *waited)
{
    if (tk->i < tk->n) {
        *id = tk->ids[tk->i++];
        return true;
    }
    if (tk->ended) {
        /* Acq_rel: the worker that sees zero sees every job's end. */
        size_t before = atomic_fetch_sub_explicit(&run->pending, tk->ended, memory_order_acq_rel);
        assert(before >= tk->ended); /* never below zero */
        if (before == tk->ended) {
            /* Nothing queued or running anywhere: the run is over. */
            stop_workers(run);
            wake_supervisor(run);
            return false;
        }
        tk->ended = 0;
    }
    size_t want = 1;
    if (tk->short_job) {
        uint64_t fit = tk->held / (tk->last ? tk->last : 1);
        want = fit < tk->max ? (size_t)fit : tk->max;
    }
    tk->n = dp__queue_pop(&run->queue, ws->index, tk->ids, want ? want : 1, waited);
    if (!tk->n)
        return false;
    *id = tk->ids[0];
    tk->i = 1;
    return true;
}

/* Of ready successors s and *next, the one of the longer path into *next;
 * returns the other. Out of line: inlined, its few instructions tipped
 * link-time optimisation into no longer inlining dp__job_execute into
 * worker_main (~46 instructions more a job on a chain, callgrind). */
static __attribute__((noinline)) uint32_t keep_longest(const dp_run_t *run, uint32_t s, uint32_t *next)
{
    if (run->rank[s] <= run->rank[*next])
        return s;
    uint32_t t = *next;
    *next = s;
    return t;
}

/* Job `done` succeeded: counts down its successors. Returns whether one of
 * them is ready to run next on this worker (*next), having published the
 * other ready ones. */
static inline bool release_successors(dp_run_t *run, uint32_t done, uint32_t *next, uint64_t *clock)
{
    const dp_graph_t *g = run->g;
    uint32_t batch[BATCH];
    size_t nb = 0;
    bool have = false;
    if (g->succ_off[done + 1] - g->succ_off[done] > CLOCK_REUSE_MAX_SUCCS)
        *clock = 0;
    for (uint32_t k = g->succ_off[done]; k < g->succ_off[done + 1]; k++) {
        uint32_t s = g->succ_ids[k];
        /* A successor with this job as its only dependency is ready now: no
         * need for its shared counter (a locked instruction costs more than
         * the two plain loads). Whoever runs it next sees this job's
         * writes: this thread, or another through the queue's
         * release/acquire. Acq_rel on the counter: the thread that brings
         * it to zero sees every dependency's writes. */
        if (g->dep_off[s + 1] - g->dep_off[s] != 1 &&
            atomic_fetch_sub_explicit(&run->remaining[s], 1, memory_order_acq_rel) != 1)
            continue;
        if (!have) {
            *next = s;
            have = true;
            continue;
        }
        /* The one of the longest remaining path runs next here (dag.h,
         * dp_gsched_t); the others wait for a worker. Only after a job
         * whose successors' paths differ (not a fan's source). */
        if (g->jobs[done].flags & DP_DEF_SUCC_RANKS)
            s = keep_longest(run, s, next);
        batch[nb++] = s;
        if (nb == BATCH) {
            publish(run, batch, nb);
            nb = 0;
        }
    }
    if (nb)
        publish(run, batch, nb);
    return have;
}

/* A job failed and the run fails fast: nothing new starts, running jobs
 * see the cancel. */
static void fail_fast(dp_run_t *run)
{
    /* Relaxed: read by the run's end, after the workers are joined. */
    atomic_store_explicit(&run->failfast, true, memory_order_relaxed);
    dp_ctx_cancel(&run->ctx);
    stop_workers(run);
    wake_supervisor(run);
}

/* The rest of a parked job whose wait is over, on the worker that took it
 * off the lot (dp_park_ops_t.resume). */
static bool resume_job(void *run, dp_park_t *p, void *worker)
{
    wstate_t *ws = worker;
    ws->clock = 0;
    return dp__job_resume(run, p, ws->index, &ws->rng, &ws->clock);
}

/* ------------------------------------------------------------------------ */
/* Ordered runs: pools and priorities                                        */
/* ------------------------------------------------------------------------ */

/* A graph with pools or priorities (prio.h): the ready jobs wait in the
 * scheduler's queue by priority, and the lock-free queue carries one token
 * per job put there, so that idle workers wait, wake, start and stop
 * exactly as in the plain case. A worker that ends a job tells the
 * scheduler in one step (the job's pool slots back, its ready successors
 * in) and goes on with the best ready job if that step made one ready; it
 * publishes a token for each other. A job waiting for its pool is in
 * neither queue: it holds no worker and no token until a job of its pool
 * ends and gives it the slots. */

/* What a worker of an ordered run keeps between its jobs: a carry (jobs
 * of one pool taken from its line to run here one after the other on the
 * slots of the job before, prio.h dp__sched_step_carry), and the ready
 * successors of the carry's jobs, told to the scheduler in one step when
 * the carry ends (or this buffer is full). Both only for jobs that take
 * under run->short_ticks, so that what a worker holds back is short. */
typedef struct ordered {
    uint32_t carry[POP_MAX_ORDERED - 1];
    size_t ci, cn;
    uint32_t sb[BATCH];
    size_t nsb;
} ordered_t;

/* Zeroes: the values of tokens (never read). */
static const uint32_t tokens[BATCH];

static void publish_tokens(dp_run_t *run, size_t n)
{
    while (n) {
        size_t k = n < BATCH ? n : BATCH;
        publish(run, tokens, k);
        n -= k;
    }
}

/* next_job, then the best ready jobs for the tokens taken. Out of line,
 * as ordered_end: worker_main serves both kinds of run, and the plain
 * case must keep dp__job_execute inlined there (callgrind: ~46
 * instructions a job on a chain when it was not). */
static __attribute__((noinline)) bool next_job_ordered(dp_run_t *run, const wstate_t *ws, taken_t *tk, uint32_t *id,
                                                       bool *waited)
{
    bool fresh = tk->i >= tk->n;
    if (!next_job(run, ws, tk, id, waited))
        return false;
    if (fresh) {
        dp__sched_take(run->sched, tk->ids, tk->n);
        *id = tk->ids[0];
    }
    return true;
}

/* Job `done` ended with status st: its pool slots back and, if it
 * succeeded, its ready successors to the scheduler. Returns whether a
 * ready job is to run next on this worker (*next); never when the worker
 * still holds jobs it took before (take false: a job made ready now must
 * not pass them). Without the scheduler's lock when the worker carries
 * jobs (the next one takes done's slots over) or when done made one job
 * ready that may take its slots over (dp__sched_handoff: a chain). short:
 * done took under run->short_ticks (it may start a carry). */
static __attribute__((noinline)) bool ordered_end(dp_run_t *run, ordered_t *o, uint32_t done, dp_status_t st, bool take,
                                                  bool short_job, uint32_t *next, uint64_t *clock)
{
    const dp_graph_t *g = run->g;
    uint32_t *batch = o->sb;
    size_t nb = o->nsb;
    if (st == DP_STATUS_SUCCESS) {
        if (g->succ_off[done + 1] - g->succ_off[done] > CLOCK_REUSE_MAX_SUCCS)
            *clock = 0;
        for (uint32_t k = g->succ_off[done]; k < g->succ_off[done + 1]; k++) {
            uint32_t s = g->succ_ids[k];
            /* As release_successors. */
            if (g->dep_off[s + 1] - g->dep_off[s] != 1 &&
                atomic_fetch_sub_explicit(&run->remaining[s], 1, memory_order_acq_rel) != 1)
                continue;
            batch[nb++] = s;
            if (nb == BATCH) {
                publish_tokens(run, dp__sched_step(run->sched, UINT32_MAX, batch, nb, NULL));
                nb = 0;
            }
        }
    }
    if (o->ci < o->cn) {
        if (short_job) {
            /* The next carried job takes done's slots over (the carry is
             * of done's pool and slots, and is returned before any other
             * job can end on this worker: worker_main); the successors
             * wait in the buffer. */
            o->nsb = nb;
            *next = o->carry[o->ci++];
            return true;
        }
        /* A job that took long: what the worker held back goes out now. */
        publish_tokens(run, dp__sched_carry_return(run->sched, o->carry + o->ci, o->cn - o->ci));
        o->ci = o->cn = 0;
    }
    o->nsb = 0;
    if (take && nb == 1 && dp__sched_handoff(run->sched, done, batch[0])) {
        *next = batch[0];
        return true;
    }
    uint32_t n = UINT32_MAX;
    size_t nc = 0;
    /* A carry only with nothing held (take) and no trigger rules (whose
     * ends go through ordered_end_rules). */
    uint32_t *carry = take && short_job && !run->rules ? o->carry : NULL;
    publish_tokens(
        run, dp__sched_step_carry(run->sched, done, batch, nb, take ? &n : NULL, carry, POP_MAX_ORDERED - 1, &nc));
    o->ci = 0;
    o->cn = nc;
    *next = n;
    return n != UINT32_MAX;
}

/* Before a worker stands by for a parked job: the buffered successors to
 * the scheduler and its carry back to the pool's line (another job may end
 * here first, and the wait may be long). */
static __attribute__((noinline)) void ordered_park(dp_run_t *run, ordered_t *o)
{
    if (o->nsb)
        publish_tokens(run, dp__sched_step(run->sched, UINT32_MAX, o->sb, o->nsb, NULL));
    if (o->ci < o->cn)
        publish_tokens(run, dp__sched_carry_return(run->sched, o->carry + o->ci, o->cn - o->ci));
    o->nsb = o->ci = o->cn = 0;
}

/* rules.c's publish in a run with pools or priorities: the successors its
 * rules let start go to the scheduler, a token for each it made ready. */
static void publish_sched_for_rules(dp_run_t *run, const uint32_t *ids, size_t n)
{
    publish_tokens(run, dp__sched_step(run->sched, UINT32_MAX, ids, n, NULL));
}

/* ordered_end for a graph with trigger rules as well (any end counts down
 * the successors, which rules.c judges): their ready ones, and the job's
 * pool slots back, through the scheduler. */
static __attribute__((noinline)) bool ordered_end_rules(dp_run_t *run, uint32_t done, bool take, uint32_t *next)
{
    uint32_t kept = UINT32_MAX;
    size_t nb = dp__rules_release(run, done, &kept, publish_sched_for_rules) ? 1 : 0;
    uint32_t n = UINT32_MAX;
    publish_tokens(run, dp__sched_step(run->sched, done, &kept, nb, take ? &n : NULL));
    *next = n;
    return n != UINT32_MAX;
}

/* ------------------------------------------------------------------------ */
/* Runs of pool lines only: pools, no priority                               */
/* ------------------------------------------------------------------------ */

/* A graph with a pool that can bound the run and no priority (prio.h,
 * dp__sched_lines_only): the ready jobs go through the run's queue as in
 * the plain case, in its order. A pool job takes its slots as it starts
 * (lines_start), or else waits in its pool's line, holding no worker; it
 * gives them back when it ends, and the jobs of the line that then fit
 * are published with their slots (the first runs next on this worker if
 * it has nothing else to run). Nobody waiting, the slots are an atomic
 * counter, and a job passes its slots on to the successor it runs next,
 * of the same pool and slots, with no atomic operation at all.
 *
 * `pending` (queued or running jobs): a job that joins a line is counted
 * out (tk->ended) and counted in again when a drain publishes it; a job
 * drained into a worker's hands takes over the count of the job it
 * follows, as a kept successor does. */

/* The jobs of pool p1 - 1's line that fit now: the first into *next when
 * the worker has none (*have), the others published. */
static void lines_drain(dp_run_t *run, uint32_t p1, bool *have, uint32_t *next)
{
    uint32_t ids[BATCH];
    size_t k;
    do {
        k = dp__sched_pool_drain(run->sched, p1, ids, BATCH);
        size_t i = 0;
        if (k && !*have) {
            *next = ids[i++];
            *have = true;
        }
        if (k > i)
            publish(run, ids + i, k - i);
    } while (k == BATCH);
}

/* Job *id is about to start in a run of pool lines: true when it may (no
 * pool, or it has its slots; or it joined its pool's line and a job of
 * that line, drained at once, takes its place in *id). False: it waits in
 * its pool's line, and the worker takes another job. */
static __attribute__((noinline)) bool lines_start(dp_run_t *run, taken_t *tk, uint32_t *held, uint32_t *id)
{
    if (*held != UINT32_MAX) {
        /* The slots of the job before, held by this worker: this job's if
         * it needs the same, else back to the pool. */
        uint32_t h = *held;
        *held = UINT32_MAX;
        if (dp__sched_pool_pass(run->sched, h, *id))
            return true;
        bool busy = true; /* with *id: what fits now is published */
        lines_drain(run, dp__sched_pool_give(run->sched, h), &busy, id);
    }
    uint32_t p1 = dp__sched_pool_of(run->sched, *id);
    if (!p1 || dp__sched_pool_take(run->sched, *id))
        return true;
    bool have = false;
    lines_drain(run, p1, &have, id);
    if (!have)
        tk->ended++; /* counted in again by the drain that publishes it */
    return have;
}

/* Job `done`, of a run of pool lines, ended and told its successors as in
 * the plain case (*have: one is to run next here, *next): its slots go to
 * that one when it needs the same (dp__sched_pool_pass), else back to its
 * pool, and the jobs of the pool's line that then fit are handed out. */
static __attribute__((noinline)) void lines_end(dp_run_t *run, uint32_t done, uint32_t *held, bool *have,
                                                uint32_t *next)
{
    dp_sched_t *s = run->sched;
    if (*have && dp__sched_pool_pass(s, done, *next))
        return;
    if (!*have && dp__sched_pool_unwaited(s, done)) {
        /* Held for the worker's next job (lines_start), or given back
         * before it goes to the queue (lines_unhold): one atomic
         * operation less a job where jobs take turns on a pool. */
        *held = done;
        return;
    }
    uint32_t p1 = dp__sched_pool_give(s, done);
    if (p1)
        lines_drain(run, p1, have, next);
}

/* Before a worker goes to the queue: the slots it holds back to their
 * pool (a job waiting for them must not wait for this worker's next job).
 * A job of the line drained now runs next here (*have, *id), counted in
 * for the one this worker counted out. */
static __attribute__((noinline)) void lines_unhold(dp_run_t *run, taken_t *tk, uint32_t *held, bool *have, uint32_t *id)
{
    uint32_t h = *held;
    *held = UINT32_MAX;
    lines_drain(run, dp__sched_pool_give(run->sched, h), have, id);
    if (*have) {
        assert(tk->ended > 0);
        tk->ended--;
    }
}

static void *worker_main(void *p)
{
    dp_worker_t *w = p;
    dp_run_t *run = w->run;
    wstate_t ws = {
        .index = w->index,
        .rng = run->opts.seed * 0x9E3779B97F4A7C15ull + w->index + 1,
        .clock = 0,
    };
    taken_t tk = {.n = 0, .max = POP_MAX, .held = POP_HELD * run->short_ticks};
    size_t succeeded = 0;
    bool have = false; /* id is a successor kept from the last job */
    uint32_t id = 0;
    /* A run with a priority (prio.h): its jobs come from the scheduler,
     * and go back to it when they end. A run of pool lines only takes its
     * jobs as the plain case does, each of a pool with its slots. */
    const bool lines = run->sched && dp__sched_is_lines(run->sched);
    const bool ordered = run->sched && !lines;
    if (ordered)
        tk.max = POP_MAX_ORDERED;
    else if (lines)
        tk.max = POP_HELD;
    ordered_t ord = {.nsb = 0, .ci = 0, .cn = 0};
    uint32_t held = UINT32_MAX; /* a run of pool lines: the job whose slots this worker holds */

    for (;;) {
        bool waited = false;
        if (__builtin_expect(held != UINT32_MAX, 0) && !have && tk.i >= tk.n)
            lines_unhold(run, &tk, &held, &have, &id);
        if (!have) {
            if (__builtin_expect(ordered, 0)) {
                if (!next_job_ordered(run, &ws, &tk, &id, &waited))
                    break;
            } else if (!next_job(run, &ws, &tk, &id, &waited)) {
                break;
            }
        }
        if (waited)
            ws.clock = 0;
        have = false;
        if (__builtin_expect(lines, 0) && !lines_start(run, &tk, &held, &id))
            continue;
        if (dp__queue_closed(&run->queue) || dp__run_done(run, dp__run_tick(run, ws.clock)))
            break;

        if (dp__job_execute(run, id, ws.index, &ws.rng, &ws.clock)) {
            /* Parked: stand by for it until a parked job (it, or another)
             * ends on this worker. Jobs waiting in the queue need another
             * worker meanwhile. */
            if (__builtin_expect(ordered, 0))
                ordered_park(run, &ord);
            start_for_queue(run, dp__queue_tail(&run->queue));
            if (!dp__park_stand(&run->park, ws.index, &ws, &id))
                break;
        }
        const dp_slot_t *sl = &run->slots[id];
        dp_status_t st = sl->status;
        tk.last = ws.clock ? ws.clock - sl->start_tick : 0;
        tk.short_job = ws.clock && tk.last < run->short_ticks;
        const uint32_t done = id;

        if (__builtin_expect(ordered, 0)) {
            if (st == DP_STATUS_FAILED && run->opts.fail_fast && !dp__rules_tolerated(run, id)) {
                fail_fast(run);
                break;
            }
            succeeded += st == DP_STATUS_SUCCESS;
            if (run->rules && st != DP_STATUS_UNKNOWN) {
                ws.clock = 0;
                have = ordered_end_rules(run, id, tk.i >= tk.n, &id);
            } else {
                have = ordered_end(run, &ord, id, st, tk.i >= tk.n, tk.short_job, &id, &ws.clock);
            }
        } else if (st == DP_STATUS_SUCCESS) {
            succeeded++;
            /* A graph with trigger rules judges each successor (rules.c). */
            if (__builtin_expect(run->rules, 0)) {
                ws.clock = 0;
                have = dp__rules_release(run, id, &id, publish_for_rules);
            } else {
                have = release_successors(run, id, &id, &ws.clock);
            }
        } else if (st == DP_STATUS_FAILED && run->opts.fail_fast && !dp__rules_tolerated(run, id)) {
            fail_fast(run);
            break;
        } else if (run->rules && st != DP_STATUS_UNKNOWN) {
            /* Any end counts down the successors where rules are. */
            ws.clock = 0;
            have = dp__rules_release(run, id, &id, publish_for_rules);
        }
        if (__builtin_expect(lines, 0))
            lines_end(run, done, &held, &have, &id);
        /* The job that ran is no longer pending; a successor kept for
         * ourselves stays pending (it was counted neither in nor out). */
        if (!have)
            tk.ended++;
    }
    atomic_fetch_add_explicit(&run->succeeded, succeeded, memory_order_relaxed);
    return NULL;
}

/* Waits until the workers are done or the run's context is. */
static void supervise(dp_run_t *run)
{
    int fds[16];
    int n = dp__ctx_poll_fds(&run->ctx, fds, 15);
    struct pollfd pfd[16];
    pfd[0].fd = run->wake_fd;
    pfd[0].events = POLLIN;
    for (int i = 0; i < n; i++) {
        pfd[i + 1].fd = fds[i];
        pfd[i + 1].events = POLLIN;
    }
    for (;;) {
        if (dp__queue_closed(&run->queue))
            return;
        if (dp_ctx_done(&run->ctx)) {
            /* Timeout or outside cancellation: make sure every waiting
             * job's fd fires (a signal handler could only touch the root's)
             * and stop scheduling. */
            dp__ctx_wake_descendants(&run->ctx);
            if (run->opts.parent)
                dp__ctx_wake_descendants(run->opts.parent);
            stop_workers(run);
            return;
        }
        int r = poll(pfd, (nfds_t)(n + 1), -1);
        if (r < 0 && errno != EINTR) {
            /* Cannot wait for cancellation any more: fall back to a
             * short sleep loop rather than fail the run. */
            usleep(1000);
        }
    }
}

/* Joins every worker that started. In index order, re-reading nstarted:
 * whoever started worker i is the calling thread or a worker of a lower
 * index, joined by then, so worker i's state is final; and no worker is
 * left to start more once the loop reaches the end. */
static void join_workers(dp_run_t *run)
{
    /* Acquire: pairs with nothing the join does not already order; it
     * keeps the count's read from floating above the joins. */
    for (unsigned i = 0; i < atomic_load_explicit(&run->nstarted, memory_order_acquire); i++) {
        dp_worker_t *w = &run->workers[i];
        int st = atomic_load_explicit(&w->state, memory_order_acquire);
        assert(st != W_STARTING);
        if (st == W_RUNNING)
            pthread_join(w->thread, NULL);
        else if (st == W_KEPT)
            dp__executor_wait(run->opts.executor, &w->task);
    }
}

/* Starts one worker per root (at most the bound), waits until the run is
 * over, joins the workers. */
static void run_workers(dp_run_t *run)
{
    size_t n = run->g->njobs - run->nreused; /* the jobs to run: reused ones are success already */
    size_t nroots = dp__queue_tail(&run->queue);
    unsigned started = start_workers(run,
                                     nroots ? (unsigned)(nroots < run->nworkers ? nroots : run->nworkers) : (n > 0));
    if (started == 0 && n > 0) {
        /* Not a single thread: run nothing rather than hang. */
        dp__run_log(run, DP_LOG_ERROR, NULL, 0, "could not start any worker thread");
        dp_ctx_cancel(&run->ctx);
        stop_workers(run);
    } else if (n > 0) {
        supervise(run);
    }
    join_workers(run);
}

/* The checks before a run: refused with err, or DP_OK with g held
 * (g->running) and validated. */
static int run_allowed(dp_graph_t *g, const dp_run_opts_t *opts, char *err, size_t errlen)
{
    if (!g)
        return dp__seterr(err, errlen, DP_EINVAL, "no graph");
    if (opts->max_concurrent_jobs < 1)
        return dp__seterr(err, errlen, DP_ECONCURRENCY, "max_concurrent_jobs must be at least 1 (got %u)",
                          opts->max_concurrent_jobs);
    bool expected = false;
    if (!atomic_compare_exchange_strong(&g->running, &expected, true))
        return dp__seterr(err, errlen, DP_EBUSY, "graph is already running");
    int rc = dp_graph_validate(g, err, errlen);
    if (rc != DP_OK)
        atomic_store(&g->running, false);
    return rc;
}

/* The 1.0 entry point (the header's macro makes new callers use the sized
 * one): opts is a 1.0 struct. */
dp_result_t *(dp_graph_run)(dp_graph_t *g, const dp_run_opts_t *opts, char *err, size_t errlen)
{
    return dp_graph_run_sized(g, opts, DP__RUN_OPTS_SIZE_1_0, err, errlen);
}

dp_result_t *dp_graph_run_sized(dp_graph_t *g, const dp_run_opts_t *caller, size_t size, char *err, size_t errlen)
{
    /* The caller's fields over the defaults: a struct from an older header
     * is shorter, and nothing past its end is read. */
    dp_run_opts_t copy;
    dp_run_opts_init(&copy);
    if (caller)
        memcpy(&copy, caller, size < sizeof copy ? size : sizeof copy);
    const dp_run_opts_t *opts = &copy;
    if (run_allowed(g, opts, err, errlen) != DP_OK)
        return NULL;

    dp_run_t *run = dp__run_create(g, opts, err, errlen);
    dp_worker_t *workers = run ? calloc(run->nworkers ? run->nworkers : 1, sizeof *workers) : NULL;
    if (!workers) {
        if (run) {
            dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
            dp__run_destroy(run);
        }
        atomic_store(&g->running, false);
        return NULL;
    }
    for (unsigned i = 0; i < run->nworkers; i++)
        atomic_init(&workers[i].state, W_STARTING);
    run->workers = workers;
    run->park.ops = (dp_park_ops_t){.step = dp__job_step, .resume = resume_job, .arg = run};
    if (run->opts.log)
        dp__run_log(run, DP_LOG_INFO, NULL, 0, "run started: %zu jobs, up to %u workers", g->njobs, run->nworkers);

    run_workers(run);
    /* A run that ended with nothing pending gave every pool's slots back
     * and left nobody in a line (a job left there would end unknown). */
    assert(!run->sched || atomic_load(&run->pending) || dp__sched_settled(run->sched));
    /* A run of a graph with pools that could not bound it (prio.h): its
     * pool jobs did not wait. */
    uint32_t *unbound = NULL;
    if (run->sched)
        dp__sched_finish(run->sched, run->slots);
    else if (g->npools)
        unbound = dp__sched_unbound_waits(g, run->slots);
    run->workers = NULL;
    free(workers);
    /* A cut run's final jobs (trigger rules), before the verdict. */
    if (run->rules)
        dp__rules_cleanup(run);

    dp_run_record_t rec;
    dp_result_t *res = dp__run_end(run, &rec) == DP_OK ? dp__result_build(&rec) : NULL;
    if (res && run->sched)
        res->pool_waits = dp__sched_take_waits(run->sched);
    else if (res)
        res->pool_waits = unbound;
    else
        dp__graph_waits_give(g, unbound);
    if (res)
        dp__run_end_log(run, res);
    dp__run_destroy(run);
    atomic_store(&g->running, false);
    if (!res)
        dp__seterr(err, errlen, DP_ENOMEM, "out of memory building the result");
    return res;
}
