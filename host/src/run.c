/* run.c - a run's shared state (run.h): set up before any worker starts,
 * torn down after the last is joined; the run's options; its log lines and
 * events, which every part of a run emits.
 */
#include "run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "reuse.h"
#include "prio.h"
#include "snapshot.h"
#include "util.h"

/* A job that took less than this is short (dp_run_t.short_ticks). */
#define SHORT_JOB_NS 20000u

void dp_run_opts_init_sized(dp_run_opts_t *opts, size_t size)
{
    dp_run_opts_t d;
    memset(&d, 0, sizeof d);
    d.max_concurrent_jobs = 4;
    d.fail_fast = true;
    d.log_level = DP_LOG_INFO;
    memcpy(opts, &d, size < sizeof d ? size : sizeof d);
}

/* The 1.0 entry point (the header's macro makes new callers use the sized
 * one): a 1.0 struct ends after `seed`. */
void(dp_run_opts_init)(dp_run_opts_t *opts)
{
    dp_run_opts_init_sized(opts, DP__RUN_OPTS_SIZE_1_0);
}

/* The dependency counters, the queue's slots and its tickets live in the
 * graph's scratch, reused run after run (this run holds g->running, so it
 * has the scratch to itself): a run faults in no fresh pages for them, and
 * neither does the first, since validate made the scratch and used it. */
static int take_scratch(dp_run_t *run, size_t n, size_t nqueue, unsigned nworkers)
{
    dp_graph_t *g = run->g;
    size_t nn = n ? n : 1;
    size_t qoff = (nn * sizeof *run->remaining + 63) & ~(size_t)63;
    size_t nq = nqueue > nn ? nqueue : nn;
    size_t toff = (qoff + (nq + nworkers) * sizeof(_Atomic uint32_t) + 63) & ~(size_t)63;
    size_t need = toff + (nworkers ? nworkers : 1) * DP_QUEUE_TICKET_STRIDE * sizeof(_Atomic size_t);
    if (g->run_scratch_size < need) {
        /* realloc: what validate faulted in (it made the scratch) stays. */
        char *sc = realloc(g->run_scratch, need);
        if (!sc)
            return DP_ENOMEM;
        memset(sc + g->run_scratch_size, 0, need - g->run_scratch_size);
        g->run_scratch = sc;
        g->run_scratch_size = need;
    }
    char *sc = g->run_scratch;
    /* The queue's slots and tickets start at zero (queue.h): left so by
     * validate (dag.c settle_scratch), the calloc or realloc above, or the
     * run before (dp__queue_clean clears its slots and tickets, wherever a
     * later layout puts this run's queue). */
    run->remaining = (_Atomic uint32_t *)(void *)sc;
    dp__queue_init(&run->queue, (_Atomic uint32_t *)(void *)(sc + qoff), nqueue, (_Atomic size_t *)(void *)(sc + toff),
                   nworkers);
    /* The roots are seeded next (validate left this part untouched). */
    dp__queue_prefault(&run->queue, g->nroots);
    return DP_OK;
}

/* Every job's slot back to unknown (all zero: one memset, at memory
 * speed), the dependency counters set, and the roots (jobs without
 * dependencies) queued: one pass over the dependency offsets. */
static void reset_jobs(dp_run_t *run)
{
    _Static_assert(DP_STATUS_UNKNOWN == 0, "a zero slot is an unknown job never started");
    const dp_graph_t *g = run->g;
    size_t n = g->njobs;
    memset(run->slots, 0, n * sizeof *run->slots);
    const uint32_t *off = g->dep_off;
    /* The roots go in longest path first when their paths differ (prio.h),
     * else in id order as they are found. */
    const dp_gsched_t *gs = g->sched;
    /* A run of pool lines only seeds its roots as the plain case: a pool
     * job takes its slots as it starts (prio.h). */
    bool ordered = run->sched && !dp__sched_is_lines(run->sched);
    bool in_order = !gs->root_order && !ordered;
    for (size_t j = 0; j < n; j++) {
        uint32_t ndeps = off[j + 1] - off[j];
        /* Only jobs with two or more dependencies use their counter (see
         * pool.c): the others' stay untouched, and so do their pages when
         * there are many such jobs. */
        if (ndeps > 1)
            atomic_init(&run->remaining[j], ndeps);
        else if (!ndeps && in_order)
            dp__queue_seed(&run->queue, (uint32_t)j);
    }
    if (ordered) {
        /* The roots through the scheduler (their pools), best first; a
         * token for each it made ready. */
        uint32_t batch[64];
        size_t nb = 0, nr = gs->root_order ? gs->nroot_order : n;
        for (size_t i = 0; i <= nr; i++) {
            size_t j = i < nr && gs->root_order ? gs->root_order[i] : i;
            if (i < nr && off[j + 1] == off[j])
                batch[nb++] = (uint32_t)j;
            if (nb == 64 || (i == nr && nb)) {
                size_t k = dp__sched_seed_roots(run->sched, batch, nb);
                for (size_t t = 0; t < k; t++)
                    dp__queue_seed(&run->queue, batch[0]); /* a token: its value is not read */
                nb = 0;
            }
        }
    } else if (!in_order) {
        for (size_t i = 0; i < gs->nroot_order; i++)
            dp__queue_seed(&run->queue, gs->root_order[i]);
    }
    dp__queue_open(&run->queue);
    atomic_init(&run->pending, dp__queue_tail(&run->queue));
}

/* reset_jobs for a run with reused jobs (run->reused): they are success
 * from the start and never queued, and each other job waits only for its
 * dependencies that are not reused. Since the reused set is closed
 * (reuse.h), no job that runs counts a reused one down. A job with one
 * dependency, reused, is queued at once; one with several keeps its
 * counter for the rest (the workers use a counter exactly when a job has
 * two or more dependencies, and a counter may start below that number). */
/* Jobs ready at the start into the queue; in a run with a priority
 * through the scheduler, which hands out a token for each job it made
 * ready (reset_jobs does the same for the roots). */
static void seed_ready(dp_run_t *run, const uint32_t *batch, size_t nb)
{
    if (!run->sched || dp__sched_is_lines(run->sched)) {
        for (size_t i = 0; i < nb; i++)
            dp__queue_seed(&run->queue, batch[i]);
        return;
    }
    size_t k = dp__sched_step(run->sched, UINT32_MAX, batch, nb, NULL);
    for (size_t t = 0; t < k; t++)
        dp__queue_seed(&run->queue, batch[0]); /* a token: its value is not read */
}

static void reset_jobs_reusing(dp_run_t *run)
{
    const dp_graph_t *g = run->g;
    size_t n = g->njobs;
    memset(run->slots, 0, n * sizeof *run->slots);
    const uint32_t *off = g->dep_off;
    uint32_t batch[64];
    size_t nb = 0;
    for (size_t j = 0; j < n; j++) {
        if (run->reused[j] == DP_REUSE_YES) {
            run->slots[j].status = DP_STATUS_SUCCESS;
            continue;
        }
        uint32_t ndeps = off[j + 1] - off[j], left = ndeps;
        for (uint32_t k = off[j]; k < off[j + 1]; k++)
            left -= run->reused[g->dep_ids[k]] == DP_REUSE_YES;
        if (!left) {
            batch[nb++] = (uint32_t)j;
            if (nb == 64) {
                seed_ready(run, batch, nb);
                nb = 0;
            }
        } else if (ndeps > 1) {
            atomic_init(&run->remaining[j], left);
        }
    }
    if (nb)
        seed_ready(run, batch, nb);
    dp__queue_open(&run->queue);
    atomic_init(&run->pending, dp__queue_tail(&run->queue));
}

/* The reused jobs as one flag each (reuse.h), when opts has any. */
static int take_reused(dp_run_t *run, const dp_run_opts_t *opts, char *err, size_t errlen)
{
    if (!opts->nreused)
        return DP_OK;
    if (!opts->reused)
        return dp__seterr(err, errlen, DP_EINVAL, "opts.nreused is %zu but opts.reused is NULL", opts->nreused);
    size_t n = run->g->njobs;
    if (!(run->reused = calloc(n ? n : 1, 1)))
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    return dp__reuse_flags(run->g, opts->reused, opts->nreused, run->reused, &run->nreused, err, errlen);
}

/* A DP_EV_JOB_REUSED event for each reused job, before any job starts. */
static void announce_reused(dp_run_t *run)
{
    if (!run->nreused || !run->opts.on_event)
        return;
    for (size_t j = 0; j < run->g->njobs; j++)
        if (run->reused[j] == DP_REUSE_YES)
            dp__run_event(run, DP_EV_JOB_REUSED, (uint32_t)j, 0, 0, DP_STATUS_SUCCESS, NULL);
}

dp_run_t *dp__run_create(dp_graph_t *g, const dp_run_opts_t *opts, char *err, size_t errlen)
{
    size_t n = g->njobs;
    bool tsc;
    if (dp__clock_choose(opts->clock, &tsc, err, errlen) != DP_OK)
        return NULL;
    unsigned nworkers = opts->max_concurrent_jobs;
    if (nworkers > n)
        nworkers = (unsigned)n;
    /* Aligned: its counters each have a cache line (queue.h). */
    dp_run_t *run = aligned_alloc(_Alignof(dp_run_t), sizeof *run);
    if (!run)
        goto oom;
    memset(run, 0, sizeof *run);
    run->g = g;
    run->opts = *opts;
    run->tsc = tsc;
    if (!run->opts.seed)
        run->opts.seed = dp__now_ns();
    run->wake_fd = -1;
    run->nworkers = nworkers;
    atomic_init(&run->nstarted, 0);
    atomic_init(&run->failfast, false);
    dp__park_init(&run->park, nworkers ? nworkers : 1);
    if (take_reused(run, opts, err, errlen) != DP_OK)
        goto fail;
    atomic_init(&run->succeeded, run->nreused); /* the run's end counts reused jobs as success */
    if (dp__gsched_refresh_for_run(g) != DP_OK)
        goto oom;
    /* A run of pool lines only queues a job a second time when it found
     * its pool full as it was to start and waited in the pool's line
     * (prio.h): room for that. */
    bool sched = dp__sched_needed(g, nworkers);
    size_t nqueue = sched && dp__sched_lines_only(g) ? 2 * n : n;
    if (take_scratch(run, n, nqueue, nworkers) != DP_OK)
        goto oom;
    run->rank = g->sched->rank;
    if (sched && !(run->sched = dp__sched_new(g, tsc)))
        goto oom;
    if (!(run->slotbuf = dp__slotbuf_take(g)))
        goto oom;
    run->slots = run->slotbuf->slot;
    /* Trigger rules: a byte per job of why a rule ran or skipped it. */
    run->rules = g->has_rules;
    if (run->rules && !(run->why = calloc(n ? n : 1, 1)))
        goto oom;
    run->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (run->wake_fd < 0) {
        dp__seterr(err, errlen, DP_ESYS, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if (run->reused)
        reset_jobs_reusing(run);
    else
        reset_jobs(run);
    dp__ctx_init(&run->ctx, opts->parent, opts->timeout_ms);
    run->a0 = dp__tick_anchor(tsc);
    run->t0 = run->a0.ns;
    run->deadline_tick = run->ctx.deadline_ns ? dp__ticks_before_deadline(run->a0, run->ctx.deadline_ns) : UINT64_MAX;
    run->short_ticks = (uint64_t)((double)SHORT_JOB_NS / dp__ns_per_tick(run->a0));
    run->plain = !opts->store && !opts->on_event && !(opts->log && opts->log_level >= DP_LOG_INFO);
    if (opts->store && !(run->snaps = dp__snapshots_new(opts->store, g, run->a0))) {
        dp__ctx_destroy(&run->ctx);
        goto oom;
    }
    announce_reused(run);
    return run;

oom:
    dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
fail:
    if (run) {
        if (run->queue.slot)
            dp__queue_clean(&run->queue); /* the roots it seeded, its tickets */
        dp__slotbuf_release(g, run->slotbuf);
        if (run->wake_fd >= 0)
            close(run->wake_fd);
        dp__park_destroy(&run->park);
        free(run->reused);
        dp__sched_free(run->sched);
        free(run->why);
        free(run);
    }
    return NULL;
}

void dp__run_destroy(dp_run_t *run)
{
    /* Every worker is joined: the next run finds the queue's slots zero. */
    dp__queue_clean(&run->queue);
    dp__snapshots_free(run->snaps);
    dp__ctx_destroy(&run->ctx);
    close(run->wake_fd);
    dp__park_destroy(&run->park);
    /* Without a result to take them, the slots go back to the graph;
     * counters and queue stay in its scratch. */
    dp__slotbuf_release(run->g, run->slotbuf);
    free(run->reused);
    dp__sched_free(run->sched);
    free(run->why);
    free(run);
}

void dp__run_vlog(dp_run_t *run, dp_log_level_t level, const char *job, unsigned attempt, const char *fmt, va_list ap)
{
    if (!run->opts.log || level > run->opts.log_level)
        return;
    char buf[1024];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    char *big = NULL;
    if (n >= (int)sizeof buf)
        big = dp__vasprintf(fmt, ap2);
    va_end(ap2);
    dp_log_record_t rec = {
        .level = level,
        .job = job,
        .attempt = attempt,
        .plugin = NULL,
        .message = big ? big : buf,
        .time_ns = dp__wall_ns(),
    };
    if (job) {
        long id = dp_graph_job_id(run->g, job);
        if (id >= 0)
            rec.plugin = dp__def_pol(run->g, &run->g->jobs[id])->plugin;
    }
    run->opts.log(run->opts.log_user, &rec);
    free(big);
}

void dp__run_log(dp_run_t *run, dp_log_level_t level, const char *job, unsigned attempt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dp__run_vlog(run, level, job, attempt, fmt, ap);
    va_end(ap);
}

void dp__run_event(dp_run_t *run, dp_event_kind_t kind, uint32_t job, unsigned attempt, unsigned worker,
                   dp_status_t status, const char *error)
{
    dp__run_event_ran(run, kind, job, attempt, worker, status, error, UINT64_MAX);
}

void dp__run_event_ran(dp_run_t *run, dp_event_kind_t kind, uint32_t job, unsigned attempt, unsigned worker,
                       dp_status_t status, const char *error, uint64_t ran_ns)
{
    if (!run->opts.on_event)
        return;
    dp_event_t ev = {
        .kind = kind,
        .job = job,
        .name = dp__job_name(run->g, job),
        .attempt = attempt,
        .worker = worker,
        .time_ns = dp__now_ns() - run->t0,
        .status = status,
        .error = error,
        .start_ns = -1,
    };
    if (ran_ns != UINT64_MAX)
        ev.start_ns = ran_ns < ev.time_ns ? (int64_t)(ev.time_ns - ran_ns) : 0;
    run->opts.on_event(run->opts.event_user, &ev);
}
