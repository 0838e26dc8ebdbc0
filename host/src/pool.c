/* pool.c - running a graph on a bounded pool of worker threads.
 *
 * Workers schedule by themselves: a worker that finishes a job decrements
 * each successor's remaining-dependency counter and, for every successor
 * that reaches zero, keeps the first to run next itself (no queue, no lock:
 * a chain runs on one thread without handing work around) and pushes the
 * others onto the shared ready queue in one locked batch. No thread relays
 * messages between workers.
 *
 * The calling thread supervises: it sleeps in poll(2) on an eventfd that the
 * last worker signals when nothing is queued or running, and on the run
 * context's fds, which turn readable on the global timeout, on cancellation
 * through the parent context (also from a signal handler), or on fail-fast.
 * On cancellation it wakes idle workers; busy ones finish their job (which
 * sees its context done) and leave.
 *
 * Lock order: run->mu is a leaf (nothing else is locked while holding it).
 * No lock is held while a job runs.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pool.h"
#include "util.h"

void dp_run_opts_init(dp_run_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->max_concurrent_jobs = 4;
    opts->fail_fast = true;
    opts->log_level = DP_LOG_INFO;
}

typedef struct worker_arg {
    dp_run_t *run;
    unsigned index;
    pthread_t thread;
} worker_arg_t;

static void wake_supervisor(dp_run_t *run)
{
    uint64_t one = 1;
    ssize_t r;
    do
        r = write(run->wake_fd, &one, sizeof one);
    while (r < 0 && errno == EINTR);
}

/* Stops the workers: idle ones wake and leave, busy ones leave after their
 * job. */
static void stop_workers(dp_run_t *run)
{
    pthread_mutex_lock(&run->mu);
    atomic_store(&run->stop, true);
    pthread_cond_broadcast(&run->cv);
    pthread_mutex_unlock(&run->mu);
}

/* Pushes ready jobs; wakes as many idle workers as there are new jobs. */
static void push_ready(dp_run_t *run, const uint32_t *ids, size_t n)
{
    pthread_mutex_lock(&run->mu);
    for (size_t i = 0; i < n; i++)
        run->queue[run->qtail++] = ids[i];
    if (run->idle) {
        if (n == 1)
            pthread_cond_signal(&run->cv);
        else
            pthread_cond_broadcast(&run->cv);
    }
    pthread_mutex_unlock(&run->mu);
}

/* Takes the next ready job, waiting while there is none; false: leave.
 * *waited: set when it had to wait. */
static bool pop_ready(dp_run_t *run, uint32_t *id, bool *waited)
{
    pthread_mutex_lock(&run->mu);
    while (run->qhead == run->qtail && !atomic_load_explicit(&run->stop, memory_order_relaxed)) {
        *waited = true;
        run->idle++;
        pthread_cond_wait(&run->cv, &run->mu);
        run->idle--;
    }
    bool ok = !atomic_load_explicit(&run->stop, memory_order_relaxed) && run->qhead < run->qtail;
    if (ok)
        *id = run->queue[run->qhead++];
    pthread_mutex_unlock(&run->mu);
    return ok;
}

#define BATCH 64

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
    uint64_t clock = 0; /* last clock reading, 0 when stale */

    for (;;) {
        bool waited = false;
        if (!have && !pop_ready(run, &id, &waited))
            break;
        if (waited)
            clock = 0;
        have = false;
        if (atomic_load_explicit(&run->stop, memory_order_acquire) || dp_ctx_done(&run->ctx))
            break;

        dp__job_execute(run, id, wa->index, &rng, &clock);
        dp_status_t st = run->slots[id].status;

        size_t nready = 0;
        if (st == DP_STATUS_SUCCESS) {
            size_t nb = 0;
            uint32_t done = id; /* id is reused for the successor we keep */
            if (g->succ_off[done + 1] - g->succ_off[done] > CLOCK_REUSE_MAX_SUCCS)
                clock = 0;
            for (uint32_t k = g->succ_off[done]; k < g->succ_off[done + 1]; k++) {
                uint32_t s = g->succ_ids[k];
                if (atomic_fetch_sub_explicit(&run->remaining[s], 1, memory_order_acq_rel) != 1)
                    continue;
                nready++;
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
        if (!have) {
            if (atomic_fetch_sub_explicit(&run->pending, 1, memory_order_acq_rel) == 1) {
                /* Nothing queued or running anywhere: the run is over. */
                stop_workers(run);
                wake_supervisor(run);
                break;
            }
        }
        (void)nready;
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
    /* Slots and queue live in the graph's scratch, reused run after run
     * (this run holds g->running, so it has the scratch to itself). */
    size_t nn = n ? n : 1;
    size_t roff = (nn * sizeof *run->slots + 63) & ~(size_t)63;
    size_t qoff = (roff + nn * sizeof *run->remaining + 63) & ~(size_t)63;
    size_t need = qoff + nn * sizeof *run->queue;
    if (g->run_scratch_size < need) {
        void *sc = malloc(need);
        if (!sc)
            goto oom;
        free(g->run_scratch);
        g->run_scratch = sc;
        g->run_scratch_size = need;
    }
    run->slots = g->run_scratch;
    run->remaining = (_Atomic uint32_t *)((char *)g->run_scratch + roff);
    run->queue = (uint32_t *)((char *)g->run_scratch + qoff);
    run->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (run->wake_fd < 0) {
        dp__seterr(err, errlen, DP_ESYS, "eventfd: %s", strerror(errno));
        goto fail;
    }
    for (size_t j = 0; j < n; j++) {
        dp_slot_t *sl = &run->slots[j];
        atomic_init(&run->remaining[j], g->dep_off[j + 1] - g->dep_off[j]);
        sl->status = DP_STATUS_UNKNOWN;
        sl->attempts = 0;
        sl->error = NULL;
        sl->start_ns = sl->end_ns = 0;
        sl->version = NULL;
        sl->requeue_ms = -1;
    }
    pthread_mutex_init(&run->mu, NULL);
    pthread_cond_init(&run->cv, NULL);
    dp__ctx_init(&run->ctx, opts->parent, opts->timeout_ms);
    run->t0 = dp__now_ns();
    memcpy(run->queue, g->roots, g->nroots * sizeof *run->queue);
    run->qtail = g->nroots;
    atomic_init(&run->pending, g->nroots);

    unsigned nworkers = opts->max_concurrent_jobs;
    if (nworkers > n)
        nworkers = (unsigned)n;
    worker_arg_t *workers = calloc(nworkers ? nworkers : 1, sizeof *workers);
    if (!workers) {
        dp__ctx_destroy(&run->ctx);
        pthread_cond_destroy(&run->cv);
        pthread_mutex_destroy(&run->mu);
        goto oom;
    }
    if (run->opts.log)
        dp__run_log(run, DP_LOG_INFO, NULL, 0, "run started: %zu jobs, %u workers", n, nworkers);
    unsigned started = 0;
    for (; started < nworkers; started++) {
        workers[started].run = run;
        workers[started].index = started;
        if (pthread_create(&workers[started].thread, NULL, worker_main, &workers[started]) != 0)
            break;
    }
    if (started == 0 && n > 0) {
        /* Not a single thread: run nothing rather than hang. */
        dp__run_log(run, DP_LOG_ERROR, NULL, 0, "could not start any worker thread");
        dp_ctx_cancel(&run->ctx);
        atomic_store(&run->stop, true);
    } else if (n > 0) {
        supervise(run);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(workers[i].thread, NULL);
    free(workers);

    dp_result_t *res = dp__result_build(run);
    dp__ctx_destroy(&run->ctx);
    pthread_cond_destroy(&run->cv);
    pthread_mutex_destroy(&run->mu);
    close(run->wake_fd);
    /* The result took what it needs (the error strings); slots and queue
     * stay in the graph's scratch for the next run. */
    free(run);
    atomic_store(&g->running, false);
    if (!res)
        dp__seterr(err, errlen, DP_ENOMEM, "out of memory building the result");
    return res;

oom:
    dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
fail:
    if (run) {
        if (run->wake_fd >= 0)
            close(run->wake_fd);
        free(run);
    }
    atomic_store(&g->running, false);
    return NULL;
}
