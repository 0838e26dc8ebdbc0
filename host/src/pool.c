/* pool.c - running a graph on a bounded pool of worker threads.
 *
 * max_concurrent_jobs workers (at most one per job) take ready jobs; a job
 * that polls readiness parks between its probes and its worker stands on
 * the bench for it (see "the bench" below), so jobs in flight, running or
 * parked, never exceed the bound, and a waiting job holds no awake thread.
 *
 * Workers schedule by themselves: a worker that finishes a job decrements
 * each successor's remaining-dependency counter and, for every successor
 * that reaches zero, keeps the first to run next itself (no queue, no lock:
 * a chain runs on one thread without handing work around) and pushes the
 * others onto the shared ready queue in one batch. No thread relays
 * messages between workers, and the queue takes no lock (see below).
 *
 * The calling thread supervises: it sleeps in poll(2) on an eventfd that the
 * last worker signals when nothing is queued or running, and on the run
 * context's fds, which turn readable on the global timeout, on cancellation
 * through the parent context (also from a signal handler), or on fail-fast.
 * On cancellation it wakes idle workers and closes the bench (parked jobs
 * end unknown at once); busy ones finish their job (which sees its context
 * done) and leave.
 *
 * The ready queue takes no lock; the bench (parked polling jobs) has one
 * mutex, taken once per batch of probes, never while a callback runs.
 *
 * Worker threads start on demand: one per root at first (at most the
 * bound), then more whenever jobs are published that no idle worker has
 * claimed, or a worker's job parks while jobs wait. A chain runs on one
 * thread however high max_concurrent_jobs is.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pool.h"
#include "result.h"
#include "run_end.h"
#include "util.h"

void dp_run_opts_init(dp_run_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->max_concurrent_jobs = 4;
    opts->fail_fast = true;
    opts->log_level = DP_LOG_INFO;
}

/* The ready queue. Each job enters it at most once per run, so it is a flat
 * array with two counters and no wrap-around: a producer reserves slots by
 * advancing qtail and publishes each job there as id + 1; a worker without
 * work takes a ticket by advancing qhead and waits for its slot to be
 * published. No lock: only atomics, and a futex when the wait is long.
 *
 * Slot values: 0 empty; id + 1 published; Q_WAIT a worker sleeps on it
 * (so the producer knows to wake it, and otherwise skips the system call);
 * Q_STOP the run is over. A worker holding a ticket is always idle, so at
 * most one ticket per worker is outstanding and the array needs only
 * njobs + nworkers slots. */
#define Q_WAIT UINT32_MAX
#define Q_STOP (UINT32_MAX - 1)
#define NO_TICKET SIZE_MAX

/* Spins this many rounds on an empty slot before sleeping: a job pushed a
 * moment later (the common case on a busy pool) is then taken without two
 * system calls. Short enough to stay invisible when the pool waits long. */
#define SPIN_ROUNDS 2000

typedef struct worker_arg {
    dp_run_t *run;
    unsigned index;
    pthread_t thread;
    /* The thread exists (written by whoever started it, before that thread
     * ends: the caller joins workers in index order, so it has joined the
     * starter, which has a lower index, before it reads this). */
    bool started;
    _Atomic size_t ticket; /* slot this worker waits on, or NO_TICKET */
} worker_arg_t;

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
        } while (!atomic_compare_exchange_weak(&run->nstarted, &i, i + 1));
        worker_arg_t *w = &run->workers[i];
        w->run = run;
        w->index = i;
        w->started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
        if (!w->started)
            break; /* no more threads: the running workers carry on */
        done++;
    }
    return done;
}

/* More workers when ready jobs up to queue slot `tail` are not all claimed
 * by idle workers (each idle worker holds a ticket: qhead counts them) and
 * the bound allows. A stale qhead only overestimates. */
static void start_for_queue(dp_run_t *run, size_t tail)
{
    unsigned have = atomic_load_explicit(&run->nstarted, memory_order_relaxed);
    if (have >= run->nworkers)
        return;
    size_t head = atomic_load_explicit(&run->qhead, memory_order_relaxed);
    if (head >= tail)
        return;
    size_t unclaimed = tail - head;
    unsigned room = run->nworkers - have;
    start_workers(run, unclaimed < room ? (unsigned)unclaimed : room);
}

static long futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
    /* The kernel sees the plain word behind the atomic. */
    return syscall(SYS_futex, (uint32_t *)(uintptr_t)addr, op, val, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void wake_supervisor(dp_run_t *run)
{
    uint64_t one = 1;
    ssize_t r;
    do
        r = write(run->wake_fd, &one, sizeof one);
    while (r < 0 && errno == EINTR);
}

/* Stops the workers: idle ones wake and leave, busy ones leave after their
 * job. Any thread; idempotent. A worker publishes its ticket before it
 * looks at `stop` (both seq_cst), so either it sees `stop` or we see its
 * ticket. */
static void bench_close(dp_run_t *run);

static void stop_workers(dp_run_t *run)
{
    atomic_store(&run->stop, true);
    bench_close(run);
    unsigned nstarted = atomic_load(&run->nstarted);
    for (unsigned i = 0; i < nstarted; i++) {
        size_t t = atomic_load(&run->workers[i].ticket);
        if (t == NO_TICKET)
            continue;
        if (atomic_exchange(&run->queue[t], Q_STOP) == Q_WAIT)
            futex(&run->queue[t], FUTEX_WAKE_PRIVATE, INT32_MAX);
    }
}

/* Pushes ready jobs; wakes only the workers that sleep on their slots. */
static void push_ready(dp_run_t *run, const uint32_t *ids, size_t n)
{
    size_t t = atomic_fetch_add(&run->qtail, n);
    for (size_t i = 0; i < n; i++)
        if (atomic_exchange(&run->queue[t + i], ids[i] + 1) == Q_WAIT)
            futex(&run->queue[t + i], FUTEX_WAKE_PRIVATE, 1);
    start_for_queue(run, t + n);
}

/* Waits for queue slot t (a ticket this worker holds) to be published.
 * Returns the job id + 1, or 0 when the run is stopping. *waited: set when
 * the slot was still empty. */
static uint32_t wait_slot(dp_run_t *run, worker_arg_t *wa, size_t t, bool *waited)
{
    _Atomic uint32_t *slot = &run->queue[t];
    uint32_t v = atomic_load_explicit(slot, memory_order_acquire);
    if (v != 0 && v != Q_WAIT && v != Q_STOP)
        return v; /* the common case on a busy pool: no bookkeeping */
    atomic_store(&wa->ticket, t);
    v = atomic_load_explicit(slot, memory_order_acquire);
    if (v == 0) {
        *waited = true;
        for (unsigned spin = 0; spin < SPIN_ROUNDS && v == 0; spin++) {
            if (atomic_load(&run->stop))
                break;
            cpu_relax();
            v = atomic_load_explicit(slot, memory_order_acquire);
        }
    }
    while (v == 0 || v == Q_WAIT) {
        if (atomic_load(&run->stop))
            break;
        uint32_t expected = 0;
        if (v == 0 && !atomic_compare_exchange_strong(slot, &expected, Q_WAIT)) {
            v = expected; /* published or stopped meanwhile */
            continue;
        }
        futex(slot, FUTEX_WAIT_PRIVATE, Q_WAIT);
        v = atomic_load_explicit(slot, memory_order_acquire);
    }
    atomic_store(&wa->ticket, NO_TICKET);
    if (atomic_load_explicit(&run->stop, memory_order_acquire) || v == 0 || v == Q_WAIT ||
        v == Q_STOP)
        return 0;
    return v;
}

/* Takes ready jobs into ids[] (at most max), waiting while there is none.
 * Returns how many; 0: leave. *waited: set when it had to wait.
 *
 * One at a time by default: a worker holding several ready jobs holds them
 * back from idle workers. A worker whose last job was short (max > 1) takes
 * a run of consecutive slots with one compare-and-swap instead, at most a
 * 2 * nworkers-th of what is queued: with no-op-sized jobs the workers
 * otherwise spend their time contending on the queue head and on the cache
 * lines of neighbouring slots and results, and two workers ran an
 * independent graph slower than one (bench/README.md). Every slot below
 * qtail is reserved by a producer that is publishing it, so the wait for
 * each is brief. */
static size_t pop_ready(dp_run_t *run, worker_arg_t *wa, uint32_t *ids, size_t max, bool *waited)
{
    size_t t = 0, n = 0;
    if (max > 1) {
        size_t h = atomic_load_explicit(&run->qhead, memory_order_relaxed);
        for (;;) {
            size_t tail = atomic_load_explicit(&run->qtail, memory_order_acquire);
            size_t k = tail > h ? (tail - h) / (2 * (size_t)run->nworkers) : 0;
            if (k < 2)
                break;
            if (k > max)
                k = max;
            if (atomic_compare_exchange_weak_explicit(&run->qhead, &h, h + k,
                                                      memory_order_acq_rel,
                                                      memory_order_relaxed)) {
                t = h;
                n = k;
                break;
            }
        }
    }
    if (n == 0) {
        t = atomic_fetch_add(&run->qhead, 1);
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t v = wait_slot(run, wa, t + i, waited);
        if (v == 0)
            return 0;
        ids[i] = v - 1;
    }
    return n;
}

/* ---- the bench: parked polling jobs ------------------------------------
 *
 * A job polling readiness spends nearly all its time waiting for its next
 * probe. It waits parked, not on a thread of its own: after a probe that
 * says "not ready" it goes into the run's min-heap keyed by when its next
 * step is due (the next probe, a period after the last one ended, or its
 * poll's, attempt's or run's deadline, whichever is first), and its worker
 * goes onto the bench. A worker on the bench stands for one parked job: it
 * takes no new job from the ready queue until a parked job ends on it, so
 * jobs in flight (running or parked) never exceed max_concurrent_jobs.
 *
 * One benched worker keeps the time (the leader): it sleeps until the
 * earliest due step plus a little slack (an eighth of the period, at most
 * 5 ms), so that probes due close together are run in one wake-up, then
 * runs every due probe itself, one after the other. The others sleep on a
 * condition variable and cost nothing. One wake-up per batch instead of one
 * per probe is the point: 1000 jobs polling every 100 ms woke 1000 threads
 * 10 000 times a second (~19 % of a core here); see bench/README.md. What
 * is left is mostly cache misses (a job probed 100 ms ago is cold), hence
 * the FIFO ring beside the heap (jobs re-park in due order: O(1), read in
 * order), batches of due jobs taken under one lock, and prefetching.
 *
 * Whatever may take long does not run on the leader: a probe of a job whose
 * probe once took long (slow), and the rest of an attempt once its poll is
 * over (attempt_end, retries, run again). Before either, the leader hands
 * the time keeping to another benched worker and then runs it itself: so a
 * job's check, attempt_end and next attempt run on the thread that ran its
 * last probe, and one job's callbacks never run concurrently (a job is in
 * the heap or on exactly one thread).
 *
 * Stopping (fail-fast, cancellation, global timeout) closes the bench:
 * nothing parks any more, and every benched worker takes parked jobs at
 * once; their poll sees the run's context done and they end unknown.
 */

static void heap_push(dp_run_t *run, dp_park_t *p)
{
    dp_park_ent_t *h = run->pk_heap;
    size_t i = run->pk_n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (h[up].due_ns <= p->due_ns)
            break;
        h[i] = h[up];
        i = up;
    }
    h[i].due_ns = p->due_ns;
    h[i].p = p;
}

static dp_park_t *heap_pop(dp_run_t *run)
{
    dp_park_ent_t *h = run->pk_heap;
    dp_park_t *top = h[0].p;
    dp_park_ent_t last = h[--run->pk_n];
    size_t n = run->pk_n, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h[c + 1].due_ns < h[c].due_ns)
            c++;
        if (last.due_ns <= h[c].due_ns)
            break;
        h[i] = h[c];
        i = c;
    }
    if (n)
        h[i] = last;
    return top;
}

/* Parked jobs: the FIFO ring while they come in due order, else the heap.
 * Callers hold pk_mu. */
static size_t bench_count(const dp_run_t *run)
{
    return run->pk_n + run->pk_fn;
}

/* The earliest parked entry (bench_count() > 0). */
static const dp_park_ent_t *bench_peek(const dp_run_t *run)
{
    const dp_park_ent_t *f = run->pk_fn ? &run->pk_fifo[run->pk_fhead] : NULL;
    if (!run->pk_n)
        return f;
    if (f && f->due_ns <= run->pk_heap[0].due_ns)
        return f;
    return &run->pk_heap[0];
}

static dp_park_t *bench_pop(dp_run_t *run)
{
    const dp_park_ent_t *e = bench_peek(run);
    if (e != &run->pk_heap[0] || !run->pk_n) {
        dp_park_t *p = e->p;
        run->pk_fhead = run->pk_fhead + 1 == run->nworkers ? 0 : run->pk_fhead + 1;
        run->pk_fn--;
        return p;
    }
    return heap_pop(run);
}

static void bench_push(dp_run_t *run, dp_park_t *p)
{
    size_t cap = run->nworkers;
    size_t tail = run->pk_fhead + run->pk_fn;
    if (tail >= cap)
        tail -= cap;
    size_t last = tail == 0 ? cap - 1 : tail - 1;
    if (run->pk_fn == 0 || run->pk_fifo[last].due_ns <= p->due_ns) {
        run->pk_fifo[tail].due_ns = p->due_ns;
        run->pk_fifo[tail].p = p;
        run->pk_fn++;
    } else {
        heap_push(run, p);
    }
    /* The time keeper sleeps past this job's step: wake it to sleep less. */
    if (run->pk_sleep_until && dp__sat_add(p->due_ns, p->slack_ns) < run->pk_sleep_until)
        pthread_cond_signal(&run->pk_leader_cv);
}

bool dp__run_park(dp_run_t *run, dp_park_t *p)
{
    pthread_mutex_lock(&run->pk_mu);
    if (run->pk_closed) {
        pthread_mutex_unlock(&run->pk_mu);
        return false;
    }
    if (!run->pk_heap) {
        /* At most one parked job per worker, in the heap or the ring. */
        run->pk_heap = malloc(2 * (size_t)run->nworkers * sizeof *run->pk_heap);
        if (!run->pk_heap) {
            pthread_mutex_unlock(&run->pk_mu);
            return false;
        }
        run->pk_fifo = run->pk_heap + run->nworkers;
    }
    bench_push(run, p);
    pthread_mutex_unlock(&run->pk_mu);
    return true;
}

static void bench_close(dp_run_t *run)
{
    pthread_mutex_lock(&run->pk_mu);
    run->pk_closed = true;
    pthread_cond_broadcast(&run->pk_leader_cv);
    pthread_cond_broadcast(&run->pk_follow_cv);
    pthread_mutex_unlock(&run->pk_mu);
}

/* Gives up the time keeping (caller holds pk_mu); a benched worker takes
 * it over. */
static void bench_resign(dp_run_t *run, bool *leader)
{
    if (!*leader)
        return;
    *leader = false;
    run->pk_leader = false;
    if (bench_count(run))
        pthread_cond_signal(&run->pk_follow_cv);
}

static void timespec_at(struct timespec *ts, uint64_t ns)
{
    ts->tv_sec = (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

/* The time keeper takes at most this many due jobs at a time (one lock for
 * all of them, and the next one's state prefetched while one is probed). */
#define PROBE_BATCH 64

/* The worker whose job parked stands on the bench until a parked job ends
 * on it: returns true with *id that job (its slot holds the final status),
 * or false when the run is stopping and nothing is left to do. */
static bool bench(dp_run_t *run, worker_arg_t *wa, uint32_t *id, uint64_t *rng, uint64_t *clock)
{
    bool leader = false;
    dp_park_t *batch[PROBE_BATCH];
    pthread_mutex_lock(&run->pk_mu);
    for (;;) {
        dp_park_t *mine = NULL;  /* to run on this thread, off the time keeping */
        bool probe_mine = false; /* ... from its next probe (else from the end of its poll) */
        if (run->pk_closed) {
            /* Stopping: every benched worker takes parked jobs, one at a
             * time; their poll sees the run's context done and ends. */
            if (leader) {
                leader = false;
                run->pk_leader = false;
            }
            if (!bench_count(run)) {
                /* Nothing parked and nothing will park: leave. */
                pthread_mutex_unlock(&run->pk_mu);
                return false;
            }
            mine = bench_pop(run);
        } else {
            if (!run->pk_leader) {
                run->pk_leader = true;
                leader = true;
            }
            if (!leader) {
                pthread_cond_wait(&run->pk_follow_cv, &run->pk_mu);
                continue;
            }
            uint64_t now = bench_count(run) ? dp__now_ns() : 0;
            size_t n = 0;
            while (n < PROBE_BATCH && bench_count(run) && bench_peek(run)->due_ns <= now)
                batch[n++] = bench_pop(run);
            for (size_t k = 0; k < n && k < 2; k++) {
                const char *q = (const char *)batch[k];
                for (unsigned l = 0; l < 256; l += 64)
                    __builtin_prefetch(q + l);
            }
            if (n == 0) {
                /* Sleep until the earliest step is due, plus its slack:
                 * steps due meanwhile run in the same wake-up. */
                if (bench_count(run)) {
                    const dp_park_ent_t *e = bench_peek(run);
                    uint64_t until = dp__sat_add(e->due_ns, e->p->slack_ns);
                    struct timespec ts;
                    timespec_at(&ts, until);
                    run->pk_sleep_until = until;
                    pthread_cond_timedwait(&run->pk_leader_cv, &run->pk_mu, &ts);
                } else {
                    run->pk_sleep_until = UINT64_MAX;
                    pthread_cond_wait(&run->pk_leader_cv, &run->pk_mu);
                }
                run->pk_sleep_until = 0;
                continue;
            }
            pthread_mutex_unlock(&run->pk_mu);
            size_t back = 0, i = 0;
            for (; i < n; i++) {
                dp_park_t *p = batch[i];
                /* Memory, not the probes, is most of the cost here: the
                 * state of a job probed 100 ms ago is cold. Fetch the
                 * second next job's state (park, job, poller) and the
                 * next one's definition while this one is probed. */
                if (i + 2 < n) {
                    const char *q = (const char *)batch[i + 2];
                    for (unsigned l = 0; l < 256; l += 64)
                        __builtin_prefetch(q + l);
                }
                if (i + 1 < n)
                    __builtin_prefetch(&run->g->jobs[batch[i + 1]->id]);
                if (p->slow) {
                    mine = p;
                    probe_mine = true;
                    i++;
                    break;
                }
                /* now: the end of the previous probe (a clock read costs
                 * ~76 ns here; probes run back to back). */
                if (!dp__job_probe(run, p, wa->index, &now)) {
                    mine = p;
                    i++;
                    break;
                }
                batch[back++] = p;
            }
            /* The ones that wait again, and the ones not reached (still
             * due: the next time keeper takes them at once). */
            for (; i < n; i++)
                batch[back++] = batch[i];
            pthread_mutex_lock(&run->pk_mu);
            for (size_t k = 0; k < back; k++)
                bench_push(run, batch[k]);
            if (!mine)
                continue;
            bench_resign(run, &leader);
        }
        pthread_mutex_unlock(&run->pk_mu);
        uint64_t now = dp__now_ns();
        if (probe_mine && dp__job_probe(run, mine, wa->index, &now)) {
            pthread_mutex_lock(&run->pk_mu);
            bench_push(run, mine);
            continue;
        }
        /* Its poll is over (or the run is stopping): the rest of its
         * attempt and any retry, here. */
        uint32_t pid = mine->id;
        *clock = 0;
        bool parked = dp__job_continue(run, mine, wa->index, rng, clock);
        pthread_mutex_lock(&run->pk_mu);
        if (!parked) {
            if (run->pk_closed) {
                /* Stopping: what follows a job no longer matters, and
                 * this worker stays to empty the bench. (Others may have
                 * left while the time keeper held a batch: the jobs it
                 * put back must not be left parked.) */
                continue;
            }
            pthread_mutex_unlock(&run->pk_mu);
            *id = pid;
            return true;
        }
    }
}

#define BATCH 64

/* A worker takes at most this many ready jobs at a time (pop_ready), and
 * only when its last job took less than SHORT_JOB_NS: then the worst
 * imbalance it causes is POP_MAX short jobs run one after the other while
 * another worker could have taken some. */
#define POP_MAX 16
#define SHORT_JOB_NS 20000u

/* A worker reuses the end time of its last job as the start of its next one
 * only when at most this many successors were counted down in between (and
 * it did not wait): the bookkeeping then takes well under a microsecond, far
 * below the millisecond precision of results. After a job with many
 * successors (a fan's source) the clock is read again. */
#define CLOCK_REUSE_MAX_SUCCS 64

static void *worker_main(void *p)
{
    worker_arg_t *wa = p;
    dp_run_t *run = wa->run;
    dp_graph_t *g = run->g;
    uint64_t rng = run->opts.seed * 0x9E3779B97F4A7C15ull + wa->index + 1;
    bool have = false;
    uint32_t id = 0;
    uint32_t batch[BATCH];
    uint32_t local[POP_MAX]; /* ready jobs taken from the queue, not run yet */
    size_t lq_i = 0, lq_n = 0;
    /* Jobs this worker ended since it last told `pending`: told in one
     * subtraction when it next goes to the queue (its untaken jobs keep
     * `pending` above zero meanwhile). */
    size_t ended = 0;
    bool short_job = false; /* the last job took < SHORT_JOB_NS */
    uint64_t clock = 0; /* last tick read (ticks.h), 0 when stale */

    for (;;) {
        bool waited = false;
        if (!have) {
            if (lq_i < lq_n) {
                id = local[lq_i++];
            } else {
                if (ended) {
                    if (atomic_fetch_sub_explicit(&run->pending, ended, memory_order_acq_rel) ==
                        ended) {
                        /* Nothing queued or running anywhere: the run is over. */
                        stop_workers(run);
                        wake_supervisor(run);
                        break;
                    }
                    ended = 0;
                }
                lq_n = pop_ready(run, wa, local, short_job ? POP_MAX : 1, &waited);
                if (!lq_n)
                    break;
                id = local[0];
                lq_i = 1;
            }
        }
        if (waited)
            clock = 0;
        have = false;
        if (atomic_load_explicit(&run->stop, memory_order_acquire) ||
            dp__run_done(run, dp__run_tick(run, clock)))
            break;

        if (dp__job_execute(run, id, wa->index, &rng, &clock)) {
            /* Parked between two probes: stand on the bench for it until a
             * parked job (it, or another) ends on this worker. Jobs waiting
             * in the queue need another worker meanwhile. */
            start_for_queue(run, atomic_load_explicit(&run->qtail, memory_order_relaxed));
            if (!bench(run, wa, &id, &rng, &clock))
                break;
        }
        const dp_slot_t *sl = &run->slots[id];
        dp_status_t st = sl->status;
        short_job = clock && clock - sl->start_tick < run->short_ticks;

        if (st == DP_STATUS_SUCCESS) {
            size_t nb = 0;
            uint32_t done = id; /* id is reused for the successor we keep */
            if (g->succ_off[done + 1] - g->succ_off[done] > CLOCK_REUSE_MAX_SUCCS)
                clock = 0;
            for (uint32_t k = g->succ_off[done]; k < g->succ_off[done + 1]; k++) {
                uint32_t s = g->succ_ids[k];
                /* A successor with this job as its only dependency is ready
                 * now: no need for its shared counter (a locked instruction
                 * costs more than the two plain loads). Whoever runs it
                 * next sees this job's writes: this thread, or another
                 * through the queue's release/acquire. */
                if (g->dep_off[s + 1] - g->dep_off[s] != 1 &&
                    atomic_fetch_sub_explicit(&run->remaining[s], 1, memory_order_acq_rel) != 1)
                    continue;
                if (!have) {
                    id = s;
                    have = true;
                    continue;
                }
                batch[nb++] = s;
                if (nb == BATCH) {
                    atomic_fetch_add_explicit(&run->pending, nb, memory_order_relaxed);
                    push_ready(run, batch, nb);
                    nb = 0;
                }
            }
            if (nb) {
                atomic_fetch_add_explicit(&run->pending, nb, memory_order_relaxed);
                push_ready(run, batch, nb);
            }
        } else if (st == DP_STATUS_FAILED && run->opts.fail_fast) {
            /* Fail fast: nothing new starts, running jobs see the cancel. */
            atomic_store(&run->failfast, true);
            dp_ctx_cancel(&run->ctx);
            stop_workers(run);
            wake_supervisor(run);
            break;
        }
        /* The job that ran is no longer pending; a successor kept for
         * ourselves stays pending (it was counted neither in nor out). */
        if (!have)
            ended++;
    }
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
        if (atomic_load(&run->stop))
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

static void bench_destroy(dp_run_t *run)
{
    free(run->pk_heap);
    pthread_cond_destroy(&run->pk_leader_cv);
    pthread_cond_destroy(&run->pk_follow_cv);
    pthread_mutex_destroy(&run->pk_mu);
}

dp_result_t *dp_graph_run(dp_graph_t *g, const dp_run_opts_t *opts, char *err, size_t errlen)
{
    dp_run_opts_t defaults;
    if (!opts) {
        dp_run_opts_init(&defaults);
        opts = &defaults;
    }
    if (!g) {
        dp__seterr(err, errlen, DP_EINVAL, "no graph");
        return NULL;
    }
    if (opts->max_concurrent_jobs < 1) {
        dp__seterr(err, errlen, DP_ECONCURRENCY,
                   "max_concurrent_jobs must be at least 1 (got %u)", opts->max_concurrent_jobs);
        return NULL;
    }
    bool expected = false;
    if (!atomic_compare_exchange_strong(&g->running, &expected, true)) {
        dp__seterr(err, errlen, DP_EBUSY, "graph is already running");
        return NULL;
    }
    if (dp_graph_validate(g, err, errlen) != DP_OK) {
        atomic_store(&g->running, false);
        return NULL;
    }

    size_t n = g->njobs;
    dp_run_t *run = calloc(1, sizeof *run);
    if (!run)
        goto oom;
    run->g = g;
    run->opts = *opts;
    if (!run->opts.seed)
        run->opts.seed = dp__now_ns();
    run->wake_fd = -1;
    pthread_mutex_init(&run->pk_mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&run->pk_leader_cv, &ca);
        pthread_cond_init(&run->pk_follow_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    /* The dependency counters and the queue live in the graph's scratch,
     * reused run after run (this run holds g->running, so it has the
     * scratch to itself); the slots come back from the last freed result. */
    size_t nn = n ? n : 1;
    size_t qoff = (nn * sizeof *run->remaining + 63) & ~(size_t)63;
    unsigned nworkers = opts->max_concurrent_jobs;
    if (nworkers > n)
        nworkers = (unsigned)n;
    size_t need = qoff + (nn + nworkers) * sizeof *run->queue;
    if (g->run_scratch_size < need) {
        void *sc = malloc(need);
        if (!sc)
            goto oom;
        free(g->run_scratch);
        g->run_scratch = sc;
        g->run_scratch_size = need;
    }
    if (!(run->slotbuf = dp__slotbuf_take(g)) || dp__slotbuf_cold_init(run->slotbuf) != DP_OK)
        goto oom;
    run->slots = run->slotbuf->slot;
    run->remaining = g->run_scratch;
    run->queue = (_Atomic uint32_t *)((char *)g->run_scratch + qoff);
    run->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (run->wake_fd < 0) {
        dp__seterr(err, errlen, DP_ESYS, "eventfd: %s", strerror(errno));
        goto fail;
    }
    /* The roots (jobs without dependencies) are published before any
     * worker starts; the rest of the queue starts empty. */
    size_t nroots = 0;
    for (size_t j = 0; j < n; j++) {
        dp_slot_t *sl = &run->slots[j];
        uint32_t ndeps = g->dep_off[j + 1] - g->dep_off[j];
        /* Only jobs with two or more dependencies use their counter (see
         * worker_main): the others' stay untouched, and so do their pages
         * when there are many such jobs. */
        if (ndeps > 1)
            atomic_init(&run->remaining[j], ndeps);
        if (!ndeps)
            atomic_init(&run->queue[nroots++], (uint32_t)j + 1);
        sl->status = DP_STATUS_UNKNOWN;
        sl->attempts = 0;
        sl->start_tick = sl->end_tick = 0;
    }
    size_t nq = n + nworkers;
    for (size_t i = nroots; i < nq; i++)
        atomic_init(&run->queue[i], 0);
    atomic_init(&run->qtail, nroots);
    atomic_init(&run->qhead, 0);
    atomic_init(&run->pending, nroots);

    worker_arg_t *workers = calloc(nworkers ? nworkers : 1, sizeof *workers);
    if (!workers) {
        close(run->wake_fd);
        run->wake_fd = -1;
        goto oom;
    }
    for (unsigned i = 0; i < nworkers; i++)
        atomic_init(&workers[i].ticket, NO_TICKET);
    run->workers = workers;
    run->nworkers = nworkers;
    atomic_init(&run->nstarted, 0);
    dp__ctx_init(&run->ctx, opts->parent, opts->timeout_ms);
    run->a0 = dp__tick_anchor();
    run->t0 = run->a0.ns;
    run->deadline_tick = run->ctx.deadline_ns
                             ? dp__ticks_before_deadline(run->a0, run->ctx.deadline_ns)
                             : UINT64_MAX;
    run->short_ticks = (uint64_t)((double)SHORT_JOB_NS / dp__ns_per_tick(run->a0));
    run->plain = !opts->store && !opts->on_event &&
                 !(opts->log && opts->log_level >= DP_LOG_INFO);
    if (run->opts.log)
        dp__run_log(run, DP_LOG_INFO, NULL, 0, "run started: %zu jobs, up to %u workers", n,
                    nworkers);
    /* One worker per root to begin with; the rest as work appears. */
    unsigned started = start_workers(run, nroots ? (unsigned)(nroots < nworkers ? nroots : nworkers)
                                                 : (n > 0));
    if (started == 0 && n > 0) {
        /* Not a single thread: run nothing rather than hang. */
        dp__run_log(run, DP_LOG_ERROR, NULL, 0, "could not start any worker thread");
        dp_ctx_cancel(&run->ctx);
        atomic_store(&run->stop, true);
    } else if (n > 0) {
        supervise(run);
    }
    /* In index order: whoever started worker i has a lower index, so it has
     * been joined (and has set workers[i].started) by then; no worker is
     * left to start more once the loop reaches the end. */
    for (unsigned i = 0; i < atomic_load(&run->nstarted); i++)
        if (workers[i].started)
            pthread_join(workers[i].thread, NULL);
    run->workers = NULL;
    run->nworkers = 0;
    free(workers);

    dp_run_record_t rec;
    dp_result_t *res = dp__run_end(run, &rec) == DP_OK ? dp__result_build(&rec) : NULL;
    if (res)
        dp__run_end_log(run, res);
    dp__ctx_destroy(&run->ctx);
    close(run->wake_fd);
    bench_destroy(run);
    /* The run's end took the slots (or, without memory for it, they go
     * back to the graph); counters and queue stay in its scratch. */
    dp__slotbuf_release(g, run->slotbuf);
    free(run);
    atomic_store(&g->running, false);
    if (!res)
        dp__seterr(err, errlen, DP_ENOMEM, "out of memory building the result");
    return res;

oom:
    dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
fail:
    if (run) {
        dp__slotbuf_release(g, run->slotbuf);
        if (run->wake_fd >= 0)
            close(run->wake_fd);
        bench_destroy(run);
        free(run);
    }
    atomic_store(&g->running, false);
    return NULL;
}
