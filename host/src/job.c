/* job.c - one job's life in a run: attempts, the per-attempt timeout and
 * the deadline over them all, readiness after run, retries with backoff (or
 * the delay the job suggested), and the dp_job_* calls that callbacks make
 * (docs/waits.md).
 *
 * A job is a small state machine (attempt_start, poll steps, poll_finish,
 * attempt_finish, the backoff, job_end) rather than one call that blocks
 * until the job is over, because a waiting job must not keep a thread of
 * its own: 1000 jobs polling every 100 ms on 1000 sleeping threads cost
 * much of a core in wake-ups alone (bench/README.md). Between two probes
 * such a job parks in the run's lot (park.c); its next probe runs on
 * whichever standing worker keeps the time, in a batch with the other
 * probes due then, and the rest of its attempt (attempt_end, a retry) on
 * the thread that ran its last probe. A retry's backoff parks the same way
 * and the next attempt runs on the worker that takes it off the lot. One
 * job is only ever on one thread at a time, so its callbacks never run
 * concurrently. A probe once (no period) still runs on the worker,
 * blocking, as do run and check themselves.
 *
 * Nothing here allocates on the success path of a job that does not poll:
 * its state lives on the worker's stack, and the attempt context is only
 * initialised when the job has a timeout. A polling job's state is
 * malloc'd once per job (its next probe may run on another worker), a
 * retrying job's when its first backoff parks. Error messages are the other
 * exception (rare, and they may be long).
 */
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"

#include "readiness.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

struct dp_job {
    dp_run_t *run;
    uint32_t id;
    const dp_job_def_t *def;
    const dp_job_policy_t *pol;
    unsigned attempt;
    unsigned worker;
    dp_ctx_t *ctx; /* what callbacks see: attempt or probe context */
    char *error;   /* this attempt's message (malloc'd) */
    bool permanent;
    bool has_retry_after; /* dp_job_retry_after during the last run or check call
                           * (its delay: jobrun_t.retry_after_ms) */
    const char *version;
};

const char *dp_job_name(const dp_job_t *job)
{
    return dp__job_name(job->run->g, job->id);
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

void dp_job_log(dp_job_t *job, dp_log_level_t level, const char *fmt, ...)
{
    dp_run_t *run = job->run;
    if (!run->opts.log || level > run->opts.log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    dp__run_vlog(run, level, dp__job_name(run->g, job->id), job->attempt, fmt, ap);
    va_end(ap);
}

/* The readiness check as a dp_check_cb: callbacks get the probe context
 * through the job handle. */
static dp_outcome_t check_adapter(dp_ctx_t *probe_ctx, void *arg, char *err, size_t errlen)
{
    dp_job_t *job = arg;
    dp_ctx_t *saved = job->ctx;
    job->ctx = probe_ctx;
    job->has_retry_after = false; /* only this call's suggestion counts */
    dp_outcome_t o = job->pol->check(job, job->def->user);
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

/* The job's snapshot in the store (snapshot.h: written here, formatted
 * when someone reads the store): a few stores, no lock. */
static void set_snapshot(dp_run_t *run, const dp_job_def_t *def, unsigned attempt, unsigned phase)
{
    dp__snapshot_set(run->snaps, (uint32_t)(def - run->g->jobs), attempt, phase, dp__ticks(run->tsc));
}

static void clear_snapshot(dp_run_t *run, const dp_job_def_t *def)
{
    dp__snapshot_set(run->snaps, (uint32_t)(def - run->g->jobs), 0, DP_SNAP_NONE, 0);
}

/* The job's last error message, kept in the run's sparse array (the flag
 * first: a run where nothing failed never touches the array). A job's entry
 * is only written by the thread running it, which set the flag then. */
static char *slot_error(dp_run_t *run, uint32_t id)
{
    const dp_slotbuf_t *sb = run->slotbuf;
    return atomic_load_explicit(&sb->any_error, memory_order_relaxed) ? sb->error[id] : NULL;
}

static void take_error(dp_run_t *run, dp_job_t *job)
{
    if (!job->error)
        return;
    dp_slotbuf_t *sb = run->slotbuf;
    free(sb->error[job->id]);
    sb->error[job->id] = job->error;
    dp__flag_set(&sb->any_error);
    job->error = NULL;
}

static void clear_error(dp_run_t *run, uint32_t id)
{
    dp_slotbuf_t *sb = run->slotbuf;
    if (slot_error(run, id)) {
        free(sb->error[id]);
        sb->error[id] = NULL;
    }
}

/* Keeps the smallest requeue hint (in the sparse array as ms + 1, clamped
 * to 24 days). */
static void min_requeue(dp_run_t *run, uint32_t id, int64_t ms)
{
    if (ms < 0)
        return;
    if (ms > INT32_MAX - 1)
        ms = INT32_MAX - 1;
    int32_t *rq = &run->slotbuf->requeue[id];
    if (*rq == 0 || ms + 1 < *rq) {
        *rq = (int32_t)ms + 1;
        dp__flag_set(&run->slotbuf->any_requeue);
    }
}

static void set_version(dp_run_t *run, uint32_t id, const char *version)
{
    if (version) {
        run->slotbuf->version[id] = version;
        dp__flag_set(&run->slotbuf->any_version);
    }
}

/* A job's state between its calls. A job that may park (it polls
 * readiness with a period) keeps it on the heap, since its next probe may
 * run on another worker; every other job keeps it on its worker's stack and
 * initialises only the fields it uses (no allocation, no memset of the
 * poll's state on the no-op path). */
typedef struct jobrun {
    /* What a probe touches first (park.c prefetches the first 256 bytes). */
    dp_park_t park; /* first: the lot holds &jr->park */
    dp_job_t job;
    dp_poller_t poller;
    dp_outcome_t o; /* the attempt's outcome so far */
    bool own_ctx;
    bool may_park;          /* malloc'd: its poll may wait parked */
    bool in_poll;           /* the attempt's poll is open (poller initialised) */
    bool poll_over;         /* ... and ended: its outcome is in o */
    bool in_backoff;        /* waiting out a retry's backoff until backoff_until */
    uint64_t backoff_start; /* CLOCK_MONOTONIC when the backoff began */
    uint64_t backoff_until; /* ... and when it ends */
    uint64_t backoff_ms;    /* its length */
    dp_ctx_t actx;          /* the attempt's context when the job has a timeout */
    /* The job's deadline (all attempts and backoffs), CLOCK_MONOTONIC; 0:
     * none. Set when its first attempt starts. */
    uint64_t deadline_ns;
    bool deadline_cut;       /* the attempt's context ends at the deadline, not at its timeout */
    bool deadline_hit;       /* the deadline ended the job */
    bool poll_suggested;     /* the poll waits for a probe time the job suggested */
    uint64_t retry_after_ms; /* dp_job_retry_after's delay, when job.has_retry_after (kept out
                              * of dp_job_t: the short path zeroes that whole) */
    char err[512];           /* the readiness check's message */
} jobrun_t;

/* How late a parked job's probe may run, so that probes due close together
 * run in one wake-up of the lot's time keeper: an eighth of the period, at
 * most 5 ms. */
#define PARK_SLACK_MAX_NS 5000000u

/* A job whose last probe took longer than this has its next one run off the
 * time keeper (a slow check must not delay the probes due after it). Only
 * the last probe counts: on a shared machine a cheap probe now and then
 * takes long because its thread was preempted, and a mark that stuck would
 * soon send every job off the time keeper, one wake-up per probe again. */
#define SLOW_PROBE_NS 200000u

static void readiness_error(jobrun_t *jr)
{
    if (jr->o == DP_ERROR && jr->err[0] && (!jr->job.error || strcmp(jr->err, jr->job.error) != 0))
        dp_job_fail(&jr->job, false, "%s", jr->err);
}

/* The state a job handle lives in (every dp_job_t is a jobrun_t's). */
static jobrun_t *jobrun_of(dp_job_t *job)
{
    return (jobrun_t *)(void *)((char *)job - offsetof(jobrun_t, job));
}

void dp_job_retry_after(dp_job_t *job, uint64_t ms)
{
    if (!job)
        return;
    jobrun_of(job)->retry_after_ms = ms;
    job->has_retry_after = true;
}

/* The job's 1.2 settings (readiness_ext, deadline_ms; all zero for most). */
static inline const dp_pol_ext_t *ext_of(const dp_job_t *job)
{
    return dp__pol_ext(job->run->g, job->pol);
}

/* The int64 of a suggested delay (they are uint64 ms). */
static int64_t ms_i64(uint64_t ms)
{
    return ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)ms;
}

/* After a probe that did not end the poll, the rare cases: the probe
 * failed below the failure threshold (logged; its message is not the
 * attempt's), the check suggested when to probe again (instead of the
 * period), or the last probe had. */
static void poll_goes_on(jobrun_t *jr)
{
    dp_job_t *job = &jr->job;
    dp_poller_t *p = &jr->poller;
    dp_run_t *run = job->run;
    if (p->info.tolerated) {
        if (run->opts.log)
            dp__run_log(run, DP_LOG_WARN, dp__job_name(run->g, job->id), job->attempt,
                        "readiness probe failed (%u in a row; %u end the wait): %s", p->info.failures,
                        p->failure_threshold, jr->err[0] ? jr->err : "no message");
        free(job->error);
        job->error = NULL;
    }
    jr->poll_suggested = job->has_retry_after;
    if (job->has_retry_after) {
        job->has_retry_after = false;
        p->next_ns = dp__sat_add(p->last_end_ns, dp__ms_to_ns(jr->retry_after_ms));
        dp__slot_waits(run->slotbuf, job->id)->retry_after_ms = ms_i64(jr->retry_after_ms);
    }
}

/* One step of the attempt's poll (a probe, or the end of its wait). */
static void poll_step(jobrun_t *jr, uint64_t now_ns)
{
    unsigned probes = jr->poller.info.probes;
    if (dp__poller_step(&jr->poller, now_ns, check_adapter, &jr->job, jr->err, sizeof jr->err, &jr->o)) {
        jr->poll_over = true;
        return;
    }
    if (jr->poller.info.probes != probes &&
        __builtin_expect(jr->job.has_retry_after || jr->poller.info.tolerated || jr->poll_suggested, 0))
        poll_goes_on(jr);
}

/* When the poll's next step is due, for the lot. */
static void park_prepare(jobrun_t *jr)
{
    uint64_t slack = dp__ms_to_ns(jr->job.pol->readiness.period_ms) / 8u;
    jr->park.due_ns = dp__poller_due_ns(&jr->poller);
    jr->park.slack_ns = slack < PARK_SLACK_MAX_NS ? slack : PARK_SLACK_MAX_NS;
    jr->park.slow = jr->poller.last_probe_ns > SLOW_PROBE_NS;
}

/* Parks the job until its poll's next step is due. False: it could not
 * park; its worker waits for it. */
static bool park(dp_run_t *run, jobrun_t *jr)
{
    if (!jr->may_park)
        return false;
    park_prepare(jr);
    return dp__park_push(&run->park, &jr->park);
}

/* Starts an attempt: its context, run, then readiness up to its first wait
 * (a poll's first probe). */
static void attempt_start(dp_run_t *run, jobrun_t *jr)
{
    dp_job_t *job = &jr->job;
    const dp_job_def_t *def = job->def;
    const dp_job_policy_t *pol = job->pol;
    dp_slot_t *slot = &run->slots[job->id];
    bool store = run->opts.store != NULL;

    job->attempt++;
    slot->attempts = job->attempt < DP_SLOT_ATTEMPTS_MAX ? job->attempt : DP_SLOT_ATTEMPTS_MAX;
    job->permanent = false;
    job->has_retry_after = false;

    /* The attempt's context: the run's own when the job sets no timeout
     * and no deadline (nothing to set up), else a child with the earlier
     * of the two. */
    const dp_pol_ext_t *x = ext_of(job);
    jr->own_ctx = pol->timeout_ms > 0 || x->deadline_ms > 0;
    if (jr->own_ctx) {
        uint64_t now = dp__now_ns();
        if (job->attempt == 1 && x->deadline_ms)
            jr->deadline_ns = dp__sat_add(now, dp__ms_to_ns(x->deadline_ms));
        dp__ctx_init_at(&jr->actx, &run->ctx, pol->timeout_ms, now);
        jr->deadline_cut = false;
        if (jr->deadline_ns && (jr->actx.deadline_ns == 0 || jr->deadline_ns < jr->actx.deadline_ns)) {
            /* A fresh context (no timer, no child yet): its deadline may
             * still be set. */
            jr->actx.deadline_ns = jr->deadline_ns;
            jr->deadline_cut = true;
        }
    }
    job->ctx = jr->own_ctx ? &jr->actx : &run->ctx;

    if (store)
        set_snapshot(run, def, job->attempt, DP_SNAP_RUN);
    dp__run_event(run, DP_EV_ATTEMPT_START, job->id, job->attempt, job->worker, DP_STATUS_UNKNOWN, NULL);
    if (job->attempt == 1 && run->opts.log)
        dp__run_log(run, DP_LOG_DEBUG, dp__job_name(run->g, job->id), job->attempt, "started");

    dp_outcome_t o = DP_READY;
    if (def->run)
        o = def->run(job, def->user);
    if (o != DP_READY && o != DP_NOT_READY && o != DP_ERROR)
        o = dp_job_fail(job, false, "job returned an invalid outcome %d", (int)o);
    jr->o = o;

    if (o == DP_READY && pol->check && !dp_ctx_done(job->ctx)) {
        jr->err[0] = '\0';
        if (store)
            set_snapshot(run, def, job->attempt, DP_SNAP_READINESS);
        if (pol->readiness.period_ms == 0 && !x->readiness_ext.initial_delay_ms) {
            jr->o = dp_probe(job->ctx, pol->readiness.probe_timeout_ms, check_adapter, job, jr->err, sizeof jr->err);
            readiness_error(jr);
        } else {
            dp__poller_init(&jr->poller, job->ctx, pol->readiness.period_ms, pol->readiness.probe_timeout_ms,
                            pol->readiness.timeout_ms);
            uint64_t now = dp__now_ns();
            if (dp__readiness_ext_set(&x->readiness_ext))
                dp__poller_set_ext(&jr->poller, &x->readiness_ext, now);
            jr->in_poll = true;
            jr->poll_over = false;
            jr->poll_suggested = false;
            poll_step(jr, now);
        }
    }
}

/* Ends the attempt's poll: waits on this thread through whatever is left of
 * it (a job that could not park), then takes its outcome. */
static void poll_finish(dp_run_t *run, jobrun_t *jr)
{
    while (!jr->poll_over) {
        uint64_t now = dp__now_ns();
        if (jr->poller.next_ns > now)
            dp_ctx_sleep(&jr->poller.ctx, (jr->poller.next_ns - now + 999999u) / 1000000u);
        poll_step(jr, dp__now_ns());
    }
    /* A poll cut short, or given up, suggests when to look again: a period
     * on, or when the job said to probe again. */
    const dp_job_policy_t *pol = jr->job.pol;
    if ((jr->o == DP_NOT_READY || jr->poller.info.parent_done) && (pol->readiness.period_ms || jr->poll_suggested)) {
        int64_t hint = (int64_t)pol->readiness.period_ms;
        if (jr->poll_suggested) {
            uint64_t now = dp__now_ns(), due = jr->poller.next_ns;
            hint = due > now ? ms_i64((due - now + 999999u) / 1000000u) : 0;
        }
        min_requeue(run, jr->job.id, hint);
    }
    if (dp__readiness_ext_set(&ext_of(&jr->job)->readiness_ext)) {
        dp_job_waits_t *w = dp__slot_waits(run->slotbuf, jr->job.id);
        w->polled = true;
        w->readiness.probes = jr->poller.info.probes;
        w->readiness.successes = jr->poller.info.successes;
        w->readiness.failures = jr->poller.info.failures;
        w->readiness.period_ms = jr->poller.last_wait_ms;
    }
    dp__poller_destroy(&jr->poller);
    jr->in_poll = false;
    readiness_error(jr);
}

/* The suggestion of the call that ended the job (not ready, or failed for
 * good) as the run's requeue hint. */
static void suggestion_as_hint(dp_run_t *run, jobrun_t *jr)
{
    min_requeue(run, jr->job.id, ms_i64(jr->retry_after_ms));
    dp__slot_waits(run->slotbuf, jr->job.id)->retry_after_ms = ms_i64(jr->retry_after_ms);
}

/* A retry whose wait would end at or after the job's deadline is not made:
 * the job fails, its message saying why. */
static void past_deadline(dp_run_t *run, jobrun_t *jr, uint64_t delay)
{
    dp_slotbuf_t *sb = run->slotbuf;
    uint32_t id = jr->job.id;
    char d1[32], d2[32];
    char *msg = dp__asprintf("%s; not retried: a retry in %s would start past the deadline of %s",
                             sb->error[id] ? sb->error[id] : "failed", dp_duration_format(delay, d1, sizeof d1),
                             dp_duration_format(ext_of(&jr->job)->deadline_ms, d2, sizeof d2));
    if (msg) {
        free(sb->error[id]);
        sb->error[id] = msg;
    }
    jr->deadline_hit = true;
}

/* In the cleanup phase of trigger rules (rules.c: run->cleanup_after set),
 * the run's context is the final job's grace: its expiry is the job's
 * failure (permanent), not a cut that leaves it unknown. True when so, the
 * job's error set. */
static bool cleanup_cut(dp_run_t *run, dp_job_t *job)
{
    if (!run->cleanup_after || dp_ctx_err(&run->ctx) != DP_ETIMEDOUT)
        return false;
    uint64_t grace = job->pol->cleanup_timeout_ms ? job->pol->cleanup_timeout_ms : DP_CLEANUP_TIMEOUT_DEFAULT_MS;
    char d[32];
    dp_job_fail(job, true, "cleanup_timeout (%s) passed", dp_duration_format(grace, d, sizeof d));
    return true;
}

/* Ends the attempt (attempt_end, its deadline, events). Returns true when
 * the job is over (*final), false when it retries: then jr->in_backoff, and
 * the backoff is to be waited (park_backoff, backoff_end). */
static bool attempt_finish(dp_run_t *run, jobrun_t *jr, uint64_t *rng, dp_status_t *final)
{
    dp_job_t *job = &jr->job;
    const dp_job_def_t *def = job->def;
    const dp_job_policy_t *pol = job->pol;
    uint32_t id = job->id;
    unsigned worker = job->worker;
    dp_outcome_t o = jr->o;

    /* The attempt is over: let the job's owner release what it set up
     * for it (a plugin instance, a pinned plugin version). */
    if (pol->attempt_end) {
        /* A retry delay suggested here is not the attempt's (the hook
         * only releases what the attempt set up). */
        bool had = job->has_retry_after;
        uint64_t ms = jr->retry_after_ms;
        pol->attempt_end(job, def->user);
        job->has_retry_after = had;
        jr->retry_after_ms = ms;
    }

    /* Cancelled run: whatever the job answered, it stays unknown (the
     * seed's rule: results after cancellation are not trusted). */
    bool run_done = dp__run_done(run, dp__run_tick(run, 0));
    if (__builtin_expect(run_done, 0) && cleanup_cut(run, job)) {
        run_done = false;
        o = DP_ERROR;
    }
    /* The attempt's deadline is min(job timeout, run deadline); only
     * when the job's own timeout is the earlier one is an expiry the
     * job's timeout (else the run is ending and the job stays unknown,
     * even if the run's deadline passed just after run_done was read). */
    bool own_deadline_first = jr->own_ctx && (run->ctx.deadline_ns == 0 || jr->actx.deadline_ns < run->ctx.deadline_ns);
    if (!run_done && own_deadline_first && dp_ctx_err(&jr->actx) == DP_ETIMEDOUT) {
        char d[32];
        if (jr->deadline_cut) {
            /* The job's deadline, not the attempt's timeout: no time is
             * left for another attempt. */
            dp_job_fail(job, true, "deadline of %s passed during attempt %u",
                        dp_duration_format(ext_of(job)->deadline_ms, d, sizeof d), job->attempt);
            jr->deadline_hit = true;
        } else {
            dp_job_fail(job, false, "timed out after %s", dp_duration_format(pol->timeout_ms, d, sizeof d));
        }
        o = DP_ERROR;
    }
    if (jr->own_ctx)
        dp__ctx_destroy(&jr->actx);
    jr->own_ctx = false;
    job->ctx = &run->ctx;

    if (o == DP_ERROR && !job->error)
        dp_job_fail(job, false, "failed (no message)");
    if (run_done) {
        /* Its message (often just "interrupted") is not kept: an unknown
         * job carries no error, the run's first_error says why it
         * stopped (job_end frees the message; dp__result_build clears
         * what earlier attempts left in the slot). */
        dp__run_event(run, DP_EV_ATTEMPT_END, id, job->attempt, worker, DP_STATUS_UNKNOWN, NULL);
        dp__run_log(run, DP_LOG_INFO, dp__job_name(run->g, job->id), job->attempt, "cancelled");
        *final = DP_STATUS_UNKNOWN;
        return true;
    }
    if (o == DP_READY) {
        /* Success carries no error: earlier attempts' messages went to
         * the log and the events; attempts still counts them. */
        clear_error(run, id);
        *final = DP_STATUS_SUCCESS;
        dp__run_event(run, DP_EV_ATTEMPT_END, id, job->attempt, worker, *final, NULL);
        return true;
    }
    if (o == DP_NOT_READY) {
        *final = DP_STATUS_NOT_READY;
        if (job->has_retry_after)
            suggestion_as_hint(run, jr);
        dp__run_event(run, DP_EV_ATTEMPT_END, id, job->attempt, worker, *final, NULL);
        dp__run_log(run, DP_LOG_INFO, dp__job_name(run->g, job->id), job->attempt, "not ready");
        return true;
    }
    take_error(run, job);
    bool retry = !job->permanent && job->attempt <= pol->retries;
    dp__run_event(run, DP_EV_ATTEMPT_END, id, job->attempt, worker, DP_STATUS_FAILED, slot_error(run, id));
    uint64_t delay = 0;
    if (retry) {
        /* The job's own suggestion, if its last call made one, else the
         * backoff. */
        delay = job->has_retry_after ? jr->retry_after_ms : backoff_ms(&pol->backoff, job->attempt + 1, rng);
        if (jr->deadline_ns && dp__sat_add(dp__now_ns(), dp__ms_to_ns(delay)) >= jr->deadline_ns) {
            past_deadline(run, jr, delay);
            retry = false;
        }
    }
    if (!retry) {
        if (job->has_retry_after && !job->permanent)
            suggestion_as_hint(run, jr);
        *final = DP_STATUS_FAILED;
        dp__run_log(run, DP_LOG_ERROR, dp__job_name(run->g, job->id), job->attempt, "failed: %s", slot_error(run, id));
        return true;
    }
    if (job->has_retry_after)
        dp__slot_waits(run->slotbuf, id)->retry_after_ms = ms_i64(delay);
    char d[32];
    dp__run_log(run, DP_LOG_WARN, dp__job_name(run->g, job->id), job->attempt, "attempt failed: %s; retry in %s%s",
                slot_error(run, id), dp_duration_format(delay, d, sizeof d),
                job->has_retry_after ? " (the job's suggestion)" : "");
    if (run->opts.store)
        set_snapshot(run, def, job->attempt, DP_SNAP_BACKOFF);
    jr->in_backoff = true;
    jr->backoff_ms = delay;
    jr->backoff_start = dp__now_ns();
    jr->backoff_until = dp__sat_add(jr->backoff_start, dp__ms_to_ns(delay));
    return false;
}

/* Parks the job for its backoff (it retries), moving its state to the heap
 * if it lived on its worker's stack: between two attempts nothing points
 * into it (the attempt's context is gone, no poll is open, callbacks get
 * the job's handle per call). False: it could not park (no memory, the run
 * is stopping, or nothing to wait); *jrp is still the job's state, and its
 * worker waits the backoff out. */
static bool park_backoff(dp_run_t *run, jobrun_t **jrp)
{
    jobrun_t *jr = *jrp;
    if (jr->backoff_ms == 0)
        return false;
    if (!jr->may_park) {
        jobrun_t *h = malloc(sizeof *h);
        if (!h)
            return false;
        memcpy(h, jr, sizeof *h);
        h->may_park = true;
        *jrp = jr = h;
    }
    /* Due when the backoff ends, or when the run's deadline passes (then
     * the job ends unknown). Exactly then: a backoff wakes nothing else. */
    uint64_t dl = run->ctx.deadline_ns;
    jr->park.due_ns = dl && dl < jr->backoff_until ? dl : jr->backoff_until;
    jr->park.slack_ns = 0;
    jr->park.slow = false;
    return dp__park_push(&run->park, &jr->park);
}

/* The end of a retry's backoff: what is left of it waited out on this
 * thread (all of it, for a job that could not park). True: the next
 * attempt may start. False: the run ended during it: the job stays
 * unknown (*final), and the rest of the backoff is when a re-run could try
 * again (the requeue hint). */
static bool backoff_end(dp_run_t *run, jobrun_t *jr, dp_status_t *final)
{
    jr->in_backoff = false;
    uint64_t now = dp__now_ns();
    uint64_t left = jr->backoff_until > now ? (jr->backoff_until - now + 999999u) / 1000000u : 0;
    if (dp_ctx_sleep(&run->ctx, left) == 0)
        return true;
    if (cleanup_cut(run, &jr->job)) {
        take_error(run, &jr->job);
        *final = DP_STATUS_FAILED;
        return false;
    }
    uint64_t slept = (dp__now_ns() - jr->backoff_start) / 1000000u;
    min_requeue(run, jr->job.id, slept >= jr->backoff_ms ? 0 : (int64_t)(jr->backoff_ms - slept));
    *final = DP_STATUS_UNKNOWN;
    return false;
}

/* The job is over: its final status, end time, log line and event. */
static void job_end(dp_run_t *run, jobrun_t *jr, dp_status_t final, uint64_t *clock)
{
    dp_job_t *job = &jr->job;
    const dp_job_def_t *def = job->def;
    dp_slot_t *slot = &run->slots[job->id];
    set_version(run, job->id, job->version);
    if (job->pol->ext && ext_of(job)->deadline_ms) {
        dp_job_waits_t *w = dp__slot_waits(run->slotbuf, job->id);
        w->has_deadline = true;
        w->deadline_hit = jr->deadline_hit;
    }
    slot->status = final;
    uint64_t end = dp__ticks(run->tsc);
    dp__slot_set_end(run->slotbuf, job->id, end);
    *clock = end;
    free(job->error);
    job->error = NULL;
    if (run->opts.store)
        clear_snapshot(run, def);
    if (final != DP_STATUS_UNKNOWN && run->opts.log &&
        (final == DP_STATUS_SUCCESS ? DP_LOG_INFO : DP_LOG_WARN) <= run->opts.log_level) {
        /* Guarded: formatting a duration costs more than a no-op job. */
        char d[32];
        dp__run_log(run, final == DP_STATUS_SUCCESS ? DP_LOG_INFO : DP_LOG_WARN, dp__job_name(run->g, job->id),
                    job->attempt, "%s after %u attempt%s in %s", dp_status_name(final), job->attempt,
                    job->attempt == 1 ? "" : "s",
                    dp_duration_format(
                        dp__ticks_between(slot->start_tick, end, dp__ns_per_tick(dp__tick_anchor(run->tsc))) / 1000000u,
                        d, sizeof d));
    }
    if (run->opts.on_event)
        dp__run_event_ran(run, DP_EV_JOB_END, job->id, job->attempt, job->worker, final,
                          final == DP_STATUS_UNKNOWN ? NULL : slot_error(run, job->id),
                          slot->start_tick
                              ? dp__ticks_between(slot->start_tick, end, dp__ns_per_tick(dp__tick_anchor(run->tsc)))
                              : UINT64_MAX);
    if (jr->may_park)
        free(jr);
}

/* Runs the job's attempts from attempt_start (resume false), or from where
 * it waited (resume true: the end of a poll, or of a backoff), until it
 * ends (false) or parks (true). */
static bool drive(dp_run_t *run, jobrun_t *jr, bool resume, uint64_t *rng, uint64_t *clock)
{
    dp_status_t final = DP_STATUS_UNKNOWN;
    if (resume && jr->in_backoff) {
        if (!backoff_end(run, jr, &final))
            goto end;
        resume = false;
    }
    for (;;) {
        if (!resume) {
            attempt_start(run, jr);
            if (jr->in_poll && !jr->poll_over && park(run, jr))
                return true;
        }
        resume = false;
        if (jr->in_poll)
            poll_finish(run, jr);
        if (attempt_finish(run, jr, rng, &final))
            break;
        /* It retries, after its backoff: parked if it can be. */
        if (park_backoff(run, &jr))
            return true;
        if (!backoff_end(run, jr, &final))
            break;
    }
end:
    job_end(run, jr, final, clock);
    return false;
}

/* The state fields a job starts with (no attempt context, no poll). */
static void jobrun_start(jobrun_t *jr, uint32_t id, const dp_job_def_t *def, bool may_park)
{
    jr->may_park = may_park;
    jr->park.hint = def;
    jr->own_ctx = false;
    jr->in_poll = false;
    jr->in_backoff = false;
    jr->park.id = id;
    jr->park.slow = false;
    jr->deadline_ns = 0;
    jr->deadline_cut = false;
    jr->deadline_hit = false;
    jr->poll_suggested = false;
}

/* The short path: a job without readiness check, timeout or deadline, in a run that
 * watches no single job (dp_run_t.plain: no store snapshots, events or
 * per-job log lines to make), whose one attempt succeeds: run, attempt_end,
 * the end stamp, nothing else. On a no-op job the full state machine cost
 * as much as the scheduling. Anything else (an error, a message, not
 * ready, the run ending) goes on through the state machine exactly as if
 * attempt_start had run. */
static bool plain_job(dp_run_t *run, jobrun_t *jr, uint32_t id, const dp_job_def_t *def, unsigned worker, uint64_t *rng,
                      uint64_t *clock)
{
    dp_slot_t *slot = &run->slots[id];
    dp_job_t *job = &jr->job;
    const dp_job_policy_t *pol = dp__def_pol(run->g, def);
    *job = (dp_job_t){.run = run, .id = id, .def = def, .pol = pol, .worker = worker, .attempt = 1, .ctx = &run->ctx};
    slot->attempts = 1;
    dp_outcome_t o = DP_READY;
    if (def->run)
        o = def->run(job, def->user);
    if (o == DP_READY && !job->error) {
        uint64_t t = dp__ticks(run->tsc);
        if (!dp__run_done(run, dp__run_tick(run, t))) {
            if (pol->attempt_end) {
                pol->attempt_end(job, def->user);
                t = dp__ticks(run->tsc);
            }
            set_version(run, id, job->version);
            slot->status = DP_STATUS_SUCCESS;
            dp__slot_set_end(run->slotbuf, id, t);
            *clock = t;
            return false;
        }
    }
    if (o != DP_READY && o != DP_NOT_READY && o != DP_ERROR)
        o = dp_job_fail(job, false, "job returned an invalid outcome %d", (int)o);
    jr->o = o;
    jobrun_start(jr, id, def, false);
    return drive(run, jr, true, rng, clock);
}

bool dp__job_execute(dp_run_t *run, uint32_t id, unsigned worker, uint64_t *rng, uint64_t *clock)
{
    const dp_job_def_t *def = &run->g->jobs[id];
    /* One clock read per job: a worker going straight from one job to the
     * next starts this one when the previous one ended (see pool.c for when
     * it may). On some machines a read costs more than a no-op job. */
    run->slots[id].start_tick = *clock ? *clock : dp__ticks(run->tsc);

    jobrun_t local;
    jobrun_t *jr = &local;
    if (run->plain && (def->flags & DP_DEF_PLAIN))
        return plain_job(run, jr, id, def, worker, rng, clock);
    const dp_job_policy_t *pol = dp__def_pol(run->g, def);
    bool may_park = pol->check &&
                    (pol->readiness.period_ms > 0 || dp__pol_ext(run->g, pol)->readiness_ext.initial_delay_ms > 0);
    if (may_park) {
        /* Its poll may wait parked, and its next probe run on another
         * worker: its state must outlive this call. Without memory it
         * polls on this thread, as every job once did. */
        jobrun_t *h = malloc(sizeof *h);
        if (h)
            jr = h;
        else
            may_park = false;
    }
    jr->job = (dp_job_t){.run = run, .id = id, .def = def, .pol = pol, .worker = worker};
    jobrun_start(jr, id, def, may_park);
    return drive(run, jr, false, rng, clock);
}

/* The cleanup phase's entry (rules.c), apart from dp__job_execute so that
 * the worker loop stays its only caller: link-time optimisation then keeps
 * it inlined there (a second caller made it a call, ~40 instructions more
 * per job on the no-op path: bench/README.md, trigger rules). */
void dp__job_run_final(dp_run_t *run, uint32_t id, uint64_t *rng)
{
    const dp_job_def_t *def = &run->g->jobs[id];
    run->slots[id].start_tick = dp__ticks(run->tsc);
    jobrun_t local;
    jobrun_t *jr = &local;
    jr->job = (dp_job_t){.run = run, .id = id, .def = def, .pol = dp__def_pol(run->g, def), .worker = 0};
    /* The lot is closed: a poll waits on this thread (may_park false), a
     * backoff too (park_backoff cannot push). */
    jobrun_start(jr, id, def, false);
    uint64_t clock = 0;
    drive(run, jr, false, rng, &clock);
}

bool dp__job_step(void *run, dp_park_t *p, unsigned worker, uint64_t *now_ns)
{
    jobrun_t *jr = (jobrun_t *)p;
    jr->job.worker = worker;
    (void)run;
    /* A backoff is due only when it (or the run) is over: the rest of the
     * job goes on through dp__job_resume. */
    if (jr->in_backoff)
        return false;
    poll_step(jr, *now_ns);
    *now_ns = jr->poller.last_end_ns;
    if (jr->poll_over)
        return false;
    park_prepare(jr);
    return true;
}

bool dp__job_resume(dp_run_t *run, dp_park_t *p, unsigned worker, uint64_t *rng, uint64_t *clock)
{
    jobrun_t *jr = (jobrun_t *)p;
    jr->job.worker = worker;
    return drive(run, jr, true, rng, clock);
}
