/* job.c - one job's life in a run: attempts, the per-attempt timeout,
 * readiness after run, retries with backoff, and the dp_job_* calls that
 * callbacks make.
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
    char err[512];          /* the readiness check's message */
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

/* One step of the attempt's poll (a probe, or the end of its wait). */
static void poll_step(jobrun_t *jr, uint64_t now_ns)
{
    if (dp__poller_step(&jr->poller, now_ns, check_adapter, &jr->job, jr->err, sizeof jr->err, &jr->o))
        jr->poll_over = true;
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

    /* The attempt's context: the run's own when the job sets no timeout
     * (nothing to set up), else a child with the deadline. */
    jr->own_ctx = pol->timeout_ms > 0;
    if (jr->own_ctx)
        dp__ctx_init(&jr->actx, &run->ctx, pol->timeout_ms);
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
        if (pol->readiness.period_ms == 0) {
            jr->o = dp_probe(job->ctx, pol->readiness.probe_timeout_ms, check_adapter, job, jr->err, sizeof jr->err);
            readiness_error(jr);
        } else {
            dp__poller_init(&jr->poller, job->ctx, pol->readiness.period_ms, pol->readiness.probe_timeout_ms,
                            pol->readiness.timeout_ms);
            jr->in_poll = true;
            jr->poll_over = false;
            poll_step(jr, dp__now_ns());
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
    /* A poll cut short, or given up, suggests when to look again. */
    if (jr->o == DP_NOT_READY || jr->poller.info.parent_done)
        min_requeue(run, jr->job.id, (int64_t)jr->job.pol->readiness.period_ms);
    dp__poller_destroy(&jr->poller);
    jr->in_poll = false;
    readiness_error(jr);
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
    if (pol->attempt_end)
        pol->attempt_end(job, def->user);

    /* Cancelled run: whatever the job answered, it stays unknown (the
     * seed's rule: results after cancellation are not trusted). */
    bool run_done = dp__run_done(run, dp__run_tick(run, 0));
    /* The attempt's deadline is min(job timeout, run deadline); only
     * when the job's own timeout is the earlier one is an expiry the
     * job's timeout (else the run is ending and the job stays unknown,
     * even if the run's deadline passed just after run_done was read). */
    bool own_deadline_first = jr->own_ctx && (run->ctx.deadline_ns == 0 || jr->actx.deadline_ns < run->ctx.deadline_ns);
    if (!run_done && own_deadline_first && dp_ctx_err(&jr->actx) == DP_ETIMEDOUT) {
        char d[32];
        dp_job_fail(job, false, "timed out after %s", dp_duration_format(pol->timeout_ms, d, sizeof d));
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
        dp__run_event(run, DP_EV_ATTEMPT_END, id, job->attempt, worker, *final, NULL);
        dp__run_log(run, DP_LOG_INFO, dp__job_name(run->g, job->id), job->attempt, "not ready");
        return true;
    }
    take_error(run, job);
    bool retry = !job->permanent && job->attempt <= pol->retries;
    dp__run_event(run, DP_EV_ATTEMPT_END, id, job->attempt, worker, DP_STATUS_FAILED, slot_error(run, id));
    if (!retry) {
        *final = DP_STATUS_FAILED;
        dp__run_log(run, DP_LOG_ERROR, dp__job_name(run->g, job->id), job->attempt, "failed: %s", slot_error(run, id));
        return true;
    }
    uint64_t delay = backoff_ms(&pol->backoff, job->attempt + 1, rng);
    char d[32];
    dp__run_log(run, DP_LOG_WARN, dp__job_name(run->g, job->id), job->attempt, "attempt failed: %s; retry in %s",
                slot_error(run, id), dp_duration_format(delay, d, sizeof d));
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
    dp__run_event(run, DP_EV_JOB_END, job->id, job->attempt, job->worker, final,
                  final == DP_STATUS_UNKNOWN ? NULL : slot_error(run, job->id));
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
}

/* The short path: a job without readiness check or timeout, in a run that
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
    bool may_park = pol->check && pol->readiness.period_ms > 0;
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
