/* job.c - one job's life in a run: attempts, the per-attempt timeout,
 * readiness after run, retries with backoff, and the dp_job_* calls that
 * callbacks make.
 *
 * Nothing here allocates on the success path: the attempt context lives on
 * the worker's stack and is only initialised when the job has a timeout.
 * Error messages are the exception (they are rare and may be long).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "readiness.h"
#include "store.h"
#include "util.h"

struct dp_job {
    dp_run_t *run;
    uint32_t id;
    const dp_job_def_t *def;
    unsigned attempt;
    unsigned worker;
    dp_ctx_t *ctx;      /* what callbacks see: attempt or probe context */
    char *error;        /* this attempt's message (malloc'd) */
    bool permanent;
    const char *version;
};

const char *dp_job_name(const dp_job_t *job)
{
    return job->def->name;
}

unsigned dp_job_attempt(const dp_job_t *job)
{
    return job->attempt;
}

dp_ctx_t *dp_job_ctx(dp_job_t *job)
{
    return job->ctx;
}

dp_store_t *dp_job_store(dp_job_t *job)
{
    return job->run->opts.store;
}

void dp_job_set_version(dp_job_t *job, const char *version)
{
    job->version = version;
}

dp_outcome_t dp_job_fail(dp_job_t *job, bool permanent, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = dp__vasprintf(fmt, ap);
    va_end(ap);
    free(job->error);
    job->error = msg ? msg : dp__strdup("error (message lost: out of memory)");
    job->permanent = job->permanent || permanent;
    return DP_ERROR;
}

__attribute__((format(printf, 5, 0)))
static void log_va(dp_run_t *run, dp_log_level_t level, const char *job, unsigned attempt,
                   const char *fmt, va_list ap)
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
            rec.plugin = run->g->jobs[id].plugin;
    }
    run->opts.log(run->opts.log_user, &rec);
    free(big);
}

void dp__run_log(dp_run_t *run, dp_log_level_t level, const char *job, unsigned attempt,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_va(run, level, job, attempt, fmt, ap);
    va_end(ap);
}

void dp_job_log(dp_job_t *job, dp_log_level_t level, const char *fmt, ...)
{
    dp_run_t *run = job->run;
    if (!run->opts.log || level > run->opts.log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_va(run, level, job->def->name, job->attempt, fmt, ap);
    va_end(ap);
}

void dp__run_event(dp_run_t *run, dp_event_kind_t kind, uint32_t job, unsigned attempt,
                   unsigned worker, dp_status_t status, const char *error)
{
    if (!run->opts.on_event)
        return;
    dp_event_t ev = {
        .kind = kind,
        .job = job,
        .name = run->g->jobs[job].name,
        .attempt = attempt,
        .worker = worker,
        .time_ns = dp__now_ns() - run->t0,
        .status = status,
        .error = error,
    };
    run->opts.on_event(run->opts.event_user, &ev);
}

/* The readiness check as a dp_check_cb: callbacks get the probe context
 * through the job handle. */
static dp_outcome_t check_adapter(dp_ctx_t *probe_ctx, void *arg, char *err, size_t errlen)
{
    dp_job_t *job = arg;
    dp_ctx_t *saved = job->ctx;
    job->ctx = probe_ctx;
    dp_outcome_t o = job->def->check(job, job->def->user);
    job->ctx = saved;
    if (o == DP_ERROR && err && errlen)
        snprintf(err, errlen, "%s", job->error ? job->error : "readiness check failed");
    return o;
}

/* Backoff before attempt `next` (2, 3, ...): initial * factor^(next-2),
 * capped, minus up to `jitter` of it. */
static uint64_t backoff_ms(const dp_backoff_t *b, unsigned next, uint64_t *rng)
{
    double d = (double)b->initial_ms * pow(b->factor > 0 ? b->factor : 1.0, (double)(next - 2));
    if (b->max_ms && d > (double)b->max_ms)
        d = (double)b->max_ms;
    if (b->jitter > 0) {
        /* xorshift64*: cheap, per worker, no lock. */
        uint64_t x = *rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *rng = x;
        double u = (double)((x * 2685821657736338717ull) >> 11) / 9007199254740992.0;
        d -= d * b->jitter * u;
    }
    return d < 0 ? 0 : (uint64_t)d;
}

static void set_snapshot(dp_run_t *run, const dp_job_def_t *def, unsigned attempt,
                         const char *phase)
{
    char key[512];
    snprintf(key, sizeof key, DP_STORE_RUNNING_PREFIX "%s", def->name);
    char *val = dp__asprintf("attempt=%u phase=%s since_ms=%llu", attempt, phase,
                             (unsigned long long)((dp__now_ns() - run->t0) / 1000000u));
    if (val && dp_store_set(run->opts.store, key, val, strlen(val), free) != DP_OK)
        free(val);
}

static void clear_snapshot(dp_run_t *run, const dp_job_def_t *def)
{
    char key[512];
    snprintf(key, sizeof key, DP_STORE_RUNNING_PREFIX "%s", def->name);
    dp_store_delete(run->opts.store, key);
}

static void take_error(dp_slot_t *slot, dp_job_t *job)
{
    if (!job->error)
        return;
    free(slot->error);
    slot->error = job->error;
    job->error = NULL;
}

static void min_requeue(dp_slot_t *slot, int64_t ms)
{
    if (ms >= 0 && (slot->requeue_ms < 0 || ms < slot->requeue_ms))
        slot->requeue_ms = ms;
}

void dp__job_execute(dp_run_t *run, uint32_t id, unsigned worker, uint64_t *rng,
                     uint64_t *clock)
{
    const dp_job_def_t *def = &run->g->jobs[id];
    dp_slot_t *slot = &run->slots[id];
    dp_job_t job = {.run = run, .id = id, .def = def, .worker = worker};
    dp_status_t final = DP_STATUS_UNKNOWN;
    bool store = run->opts.store != NULL;
    /* One clock read per job: a worker going straight from one job to the
     * next starts this one when the previous one ended (see pool.c for when
     * it may). On some machines a read costs more than a no-op job. */
    slot->start_ns = *clock ? *clock : dp__now_ns();

    for (;;) {
        job.attempt++;
        slot->attempts = job.attempt;
        job.permanent = false;

        /* The attempt's context: the run's own when the job sets no
         * timeout (nothing to set up), else a child with the deadline. */
        dp_ctx_t actx;
        bool own_ctx = def->timeout_ms > 0;
        if (own_ctx)
            dp__ctx_init(&actx, &run->ctx, def->timeout_ms);
        job.ctx = own_ctx ? &actx : &run->ctx;

        if (store)
            set_snapshot(run, def, job.attempt, "run");
        dp__run_event(run, DP_EV_ATTEMPT_START, id, job.attempt, worker, DP_STATUS_UNKNOWN, NULL);
        if (job.attempt == 1 && run->opts.log)
            dp__run_log(run, DP_LOG_DEBUG, def->name, job.attempt, "started");

        dp_outcome_t o = DP_READY;
        if (def->run)
            o = def->run(&job, def->user);
        if (o != DP_READY && o != DP_NOT_READY && o != DP_ERROR)
            o = dp_job_fail(&job, false, "job returned an invalid outcome %d", (int)o);

        if (o == DP_READY && def->check && !dp_ctx_done(job.ctx)) {
            char err[512];
            err[0] = '\0';
            if (store)
                set_snapshot(run, def, job.attempt, "readiness");
            if (def->readiness.period_ms == 0) {
                o = dp_probe(job.ctx, def->readiness.probe_timeout_ms, check_adapter, &job, err,
                             sizeof err);
            } else {
                dp_poll_info_t info;
                o = dp__poll(job.ctx, def->readiness.period_ms, def->readiness.probe_timeout_ms,
                             def->readiness.timeout_ms, check_adapter, &job, err, sizeof err,
                             &info);
                /* A poll cut short, or given up, suggests when to look again. */
                if (o == DP_NOT_READY || info.parent_done)
                    min_requeue(slot, (int64_t)def->readiness.period_ms);
            }
            if (o == DP_ERROR && err[0] && (!job.error || strcmp(err, job.error) != 0))
                dp_job_fail(&job, false, "%s", err);
        }

        /* The attempt is over: let the job's owner release what it set up
         * for it (a plugin instance, a pinned plugin version). */
        if (def->attempt_end)
            def->attempt_end(&job, def->user);

        /* Cancelled run: whatever the job answered, it stays unknown (the
         * seed's rule: results after cancellation are not trusted). */
        bool run_done = dp_ctx_done(&run->ctx);
        /* The attempt's deadline is min(job timeout, run deadline); only
         * when the job's own timeout is the earlier one is an expiry the
         * job's timeout (else the run is ending and the job stays unknown,
         * even if the run's deadline passed just after run_done was read). */
        bool own_deadline_first =
            own_ctx && (run->ctx.deadline_ns == 0 || actx.deadline_ns < run->ctx.deadline_ns);
        if (!run_done && own_deadline_first && dp_ctx_err(&actx) == DP_ETIMEDOUT) {
            char d[32];
            dp_job_fail(&job, false, "timed out after %s",
                        dp_duration_format(def->timeout_ms, d, sizeof d));
            o = DP_ERROR;
        }
        if (own_ctx)
            dp__ctx_destroy(&actx);
        job.ctx = &run->ctx;

        if (o == DP_ERROR && !job.error)
            dp_job_fail(&job, false, "failed (no message)");
        if (run_done) {
            take_error(slot, &job);
            dp__run_event(run, DP_EV_ATTEMPT_END, id, job.attempt, worker, DP_STATUS_UNKNOWN,
                          slot->error);
            dp__run_log(run, DP_LOG_INFO, def->name, job.attempt, "cancelled");
            final = DP_STATUS_UNKNOWN;
            break;
        }
        if (o == DP_READY) {
            /* Success carries no error: earlier attempts' messages went to
             * the log and the events; attempts still counts them. */
            free(slot->error);
            slot->error = NULL;
            final = DP_STATUS_SUCCESS;
            dp__run_event(run, DP_EV_ATTEMPT_END, id, job.attempt, worker, final, NULL);
            break;
        }
        if (o == DP_NOT_READY) {
            final = DP_STATUS_NOT_READY;
            dp__run_event(run, DP_EV_ATTEMPT_END, id, job.attempt, worker, final, NULL);
            dp__run_log(run, DP_LOG_INFO, def->name, job.attempt, "not ready");
            break;
        }
        take_error(slot, &job);
        bool retry = !job.permanent && job.attempt <= def->retries;
        dp__run_event(run, DP_EV_ATTEMPT_END, id, job.attempt, worker, DP_STATUS_FAILED,
                      slot->error);
        if (!retry) {
            final = DP_STATUS_FAILED;
            dp__run_log(run, DP_LOG_ERROR, def->name, job.attempt, "failed: %s", slot->error);
            break;
        }
        uint64_t delay = backoff_ms(&def->backoff, job.attempt + 1, rng);
        char d[32];
        dp__run_log(run, DP_LOG_WARN, def->name, job.attempt, "attempt failed: %s; retry in %s",
                    slot->error, dp_duration_format(delay, d, sizeof d));
        if (store)
            set_snapshot(run, def, job.attempt, "backoff");
        uint64_t before = dp__now_ns();
        if (dp_ctx_sleep(&run->ctx, delay) != 0) {
            /* Cancelled during the backoff: the job stays unknown; the rest
             * of the backoff is when a re-run could try again. */
            uint64_t slept = (dp__now_ns() - before) / 1000000u;
            min_requeue(slot, slept >= delay ? 0 : (int64_t)(delay - slept));
            final = DP_STATUS_UNKNOWN;
            break;
        }
    }

    slot->version = job.version;
    slot->status = final;
    slot->end_ns = dp__now_ns();
    *clock = slot->end_ns;
    free(job.error);
    if (store)
        clear_snapshot(run, def);
    if (final != DP_STATUS_UNKNOWN && run->opts.log &&
        (final == DP_STATUS_SUCCESS ? DP_LOG_INFO : DP_LOG_WARN) <= run->opts.log_level) {
        /* Guarded: formatting a duration costs more than a no-op job. */
        char d[32];
        dp__run_log(run, final == DP_STATUS_SUCCESS ? DP_LOG_INFO : DP_LOG_WARN, def->name,
                    job.attempt, "%s after %u attempt%s in %s", dp_status_name(final), job.attempt,
                    job.attempt == 1 ? "" : "s",
                    dp_duration_format((slot->end_ns - slot->start_ns) / 1000000u, d, sizeof d));
    }
    dp__run_event(run, DP_EV_JOB_END, id, job.attempt, worker, final, slot->error);
}
