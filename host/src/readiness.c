/* readiness.c - the seed's Prober and Poller.
 *
 * A probe is one check under a child context whose deadline is the probe
 * timeout; a check that is still running at that deadline (it should have
 * noticed the context) is reported as a timed-out probe. A poll probes at
 * once (or after an initial delay) and then every period until ready, an
 * error or its own timeout; with dp_readiness_ext_t, "ready" and "an error"
 * mean that many in a row (the thresholds), and the period grows by the
 * backoff up to max_period (docs/waits.md).
 *
 * The poll is a state machine (dp_poller_t: one step = one probe, or the
 * discovery that the wait ended) rather than a loop around a sleep, so that
 * the engine can let a polling job wait without a thread of its own: a
 * sleeping thread per waiting job made every probe a wake-up, which for a
 * thousand polling jobs cost a good share of a core (bench/README.md,
 * "Readiness waits"). The engine parks the job in the run's lot until the
 * step is due (see park.c); dp_poll, for callers outside a run, sleeps on
 * the poll's context between the steps, so that cancellation ends the wait
 * at once.
 */
#include "readiness.h"

#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "util.h"

/* A probe with the caller's reading of the clock; *end_ns: the clock after
 * the check (one reading serves every test after it). */
static dp_outcome_t probe_at(dp_ctx_t *ctx, uint64_t timeout_ms, dp_check_cb check, void *arg, char *err, size_t errlen,
                             uint64_t now_ns, uint64_t *end_ns)
{
    *end_ns = now_ns;
    if (err && errlen)
        err[0] = '\0';
    if (!check) {
        dp__seterr(err, errlen, DP_EINVAL, "no readiness check");
        return DP_ERROR;
    }
    int e = dp__ctx_err_at(ctx, now_ns);
    if (e) {
        dp__seterr(err, errlen, e, "%s", dp_strerror(e));
        return DP_ERROR;
    }
    dp_ctx_t probe;
    dp__ctx_init_at(&probe, ctx, timeout_ms, now_ns);
    dp_outcome_t o = check(&probe, arg, err, errlen);
    if (o != DP_READY && o != DP_NOT_READY && o != DP_ERROR) {
        dp__seterr(err, errlen, DP_EINVAL, "readiness check returned an invalid outcome %d", (int)o);
        o = DP_ERROR;
    }
    /* The probe's own deadline passed (not the caller's): the probe timed
     * out, whatever the check answered late. */
    uint64_t end = dp__now_ns();
    *end_ns = end;
    int pe = dp__ctx_err_at(&probe, end);
    int ce = dp__ctx_err_at(ctx, end);
    dp__ctx_destroy(&probe);
    if (ce) {
        if (o != DP_ERROR || !err || !err[0])
            dp__seterr(err, errlen, ce, "%s", dp_strerror(ce));
        return DP_ERROR;
    }
    if (pe == DP_ETIMEDOUT && timeout_ms) {
        char d[32];
        dp__seterr(err, errlen, DP_ETIMEDOUT, "readiness probe timed out after %s",
                   dp_duration_format(timeout_ms, d, sizeof d));
        return DP_ERROR;
    }
    if (o == DP_ERROR && err && errlen && !err[0])
        dp__seterr(err, errlen, DP_EINVAL, "readiness check failed (no message)");
    return o;
}

dp_outcome_t dp_probe(dp_ctx_t *ctx, uint64_t timeout_ms, dp_check_cb check, void *arg, char *err, size_t errlen)
{
    uint64_t end;
    return probe_at(ctx, timeout_ms, check, arg, err, errlen, dp__now_ns(), &end);
}

void dp__poller_init(dp_poller_t *p, dp_ctx_t *parent, uint64_t period_ms, uint64_t probe_timeout_ms,
                     uint64_t timeout_ms)
{
    memset(p, 0, sizeof *p);
    p->parent = parent;
    p->period_ms = period_ms;
    p->probe_timeout_ms = probe_timeout_ms;
    p->timeout_ms = timeout_ms;
    p->success_threshold = p->failure_threshold = 1;
    p->backoff = 1.0;
    p->cur_period_ms = period_ms;
    dp__ctx_init(&p->ctx, parent, timeout_ms);
}

bool dp__readiness_ext_set(const dp_readiness_ext_t *x)
{
    return x->initial_delay_ms || x->success_threshold > 1 || x->failure_threshold > 1 || x->backoff > 1.0 ||
           x->max_period_ms;
}

const char *dp__readiness_ext_invalid(const dp_readiness_ext_t *x, uint64_t period_ms)
{
    if (x->backoff != 0 && !(x->backoff >= 1.0 && x->backoff <= 1000.0))
        return "readiness backoff must be within 1..1000 (0: none)";
    if (period_ms == 0 &&
        (x->success_threshold > 1 || x->failure_threshold > 1 || x->backoff > 1.0 || x->max_period_ms))
        return "readiness thresholds above 1, backoff and max_period need a period (period 0 probes once)";
    if (x->max_period_ms && x->max_period_ms < period_ms)
        return "readiness max_period must not be shorter than the period";
    return NULL;
}

void dp__poller_set_ext(dp_poller_t *p, const dp_readiness_ext_t *x, uint64_t now_ns)
{
    p->success_threshold = x->success_threshold > 1 ? x->success_threshold : 1;
    p->failure_threshold = x->failure_threshold > 1 ? x->failure_threshold : 1;
    p->backoff = x->backoff > 1.0 ? x->backoff : 1.0;
    p->max_period_ms = x->max_period_ms;
    p->once = p->period_ms == 0;
    if (x->initial_delay_ms) {
        /* The first step is the end of a wait, as between two probes: a
         * job parks through its initial delay. */
        p->waiting = true;
        p->next_ns = dp__sat_add(now_ns, dp__ms_to_ns(x->initial_delay_ms));
    }
}

/* The wait after a probe that did not end the poll; the period grows. */
static void wait_next(dp_poller_t *p, uint64_t t1)
{
    uint64_t per = p->cur_period_ms;
    p->last_wait_ms = per;
    p->waiting = true;
    p->next_ns = dp__sat_add(t1, dp__ms_to_ns(per ? per : 1));
    if (p->backoff > 1.0) {
        double n = (double)per * p->backoff;
        uint64_t cap = p->max_period_ms ? p->max_period_ms : UINT64_MAX / 2000000u;
        p->cur_period_ms = n >= (double)cap ? cap : (uint64_t)n;
    }
}

void dp__poller_destroy(dp_poller_t *p)
{
    dp__ctx_destroy(&p->ctx);
}

uint64_t dp__poller_due_ns(const dp_poller_t *p)
{
    uint64_t d = p->ctx.deadline_ns;
    return d && d < p->next_ns ? d : p->next_ns;
}

bool dp__poller_step(dp_poller_t *p, uint64_t now_ns, dp_check_cb check, void *arg, char *err, size_t errlen,
                     dp_outcome_t *out)
{
    p->last_end_ns = now_ns;
    if (p->waiting) {
        /* The wait between probes: the poll context ending ends it, as
         * dp_ctx_sleep would. */
        if (dp__ctx_err_at(&p->ctx, now_ns)) {
            p->waiting = false;
            int ce = dp__ctx_err_at(p->parent, now_ns);
            if (ce) {
                p->info.parent_done = true;
                dp__seterr(err, errlen, ce, "%s", dp_strerror(ce));
                *out = DP_ERROR;
            } else {
                p->info.poll_timed_out = true;
                *out = DP_NOT_READY;
            }
            return true;
        }
        if (now_ns < p->next_ns)
            return false;
        p->waiting = false;
    }
    p->info.probes++;
    p->info.tolerated = false;
    uint64_t t1;
    dp_outcome_t o = probe_at(&p->ctx, p->probe_timeout_ms, check, arg, err, errlen, now_ns, &t1);
    p->last_probe_ns = t1 - now_ns;
    p->last_end_ns = t1;
    if (o == DP_NOT_READY) {
        /* Neither a success nor a failure: both runs end. Wait a period
         * from the end of this probe. */
        p->info.successes = p->info.failures = 0;
        if (p->once)
            goto over;
        wait_next(p, t1);
        return false;
    }
    if (o == DP_ERROR) {
        /* An error caused by the poll's own deadline is the end of the
         * wait, not a failed check. */
        if (dp__ctx_err_at(p->parent, t1)) {
            p->info.parent_done = true;
            goto over;
        }
        if (dp__ctx_err_at(&p->ctx, t1) == DP_ETIMEDOUT && p->timeout_ms) {
            p->info.poll_timed_out = true;
            o = DP_NOT_READY;
            goto over;
        }
        /* A failed probe: the wait goes on below the failure threshold. */
        p->info.successes = 0;
        if (++p->info.failures >= p->failure_threshold || p->once)
            goto over;
        p->info.tolerated = true;
        wait_next(p, t1);
        return false;
    }
    p->info.failures = 0;
    if (++p->info.successes < p->success_threshold && !p->once) {
        wait_next(p, t1);
        return false;
    }
over:
    *out = o;
    return true;
}

dp_outcome_t dp__poll(dp_ctx_t *ctx, uint64_t period_ms, uint64_t probe_timeout_ms, uint64_t timeout_ms,
                      dp_check_cb check, void *arg, char *err, size_t errlen, dp_poll_info_t *info)
{
    dp_poller_t p;
    dp__poller_init(&p, ctx, period_ms, probe_timeout_ms, timeout_ms);
    dp_outcome_t o;
    while (!dp__poller_step(&p, dp__now_ns(), check, arg, err, errlen, &o)) {
        /* Sleep on the poll's context until the next probe is due; its
         * end (cancellation, deadline) cuts the sleep short and the next
         * step says how the poll ended. */
        uint64_t now = dp__now_ns();
        if (p.next_ns > now)
            dp_ctx_sleep(&p.ctx, (p.next_ns - now + 999999u) / 1000000u);
    }
    if (info)
        *info = p.info;
    dp__poller_destroy(&p);
    return o;
}

dp_outcome_t dp_poll(dp_ctx_t *ctx, uint64_t period_ms, uint64_t probe_timeout_ms, uint64_t timeout_ms,
                     dp_check_cb check, void *arg, char *err, size_t errlen)
{
    return dp__poll(ctx, period_ms, probe_timeout_ms, timeout_ms, check, arg, err, errlen, NULL);
}

dp_outcome_t dp_poll_ext(dp_ctx_t *ctx, const dp_readiness_t *rd, const dp_readiness_ext_t *ext, dp_check_cb check,
                         void *arg, char *err, size_t errlen, dp_probe_stats_t *stats)
{
    static const dp_readiness_ext_t none;
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (!rd) {
        dp__seterr(err, errlen, DP_EINVAL, "invalid readiness: none given");
        return DP_ERROR;
    }
    if (!ext)
        ext = &none;
    const char *bad = dp__readiness_ext_invalid(ext, rd->period_ms);
    if (bad) {
        dp__seterr(err, errlen, DP_EINVAL, "invalid settings: %s", bad);
        return DP_ERROR;
    }
    if (rd->period_ms == 0 && !ext->initial_delay_ms) {
        /* Period 0: one probe, as a job's. */
        dp_outcome_t o = dp_probe(ctx, rd->probe_timeout_ms, check, arg, err, errlen);
        if (stats) {
            stats->probes = 1;
            stats->successes = o == DP_READY;
            stats->failures = o == DP_ERROR;
        }
        return o;
    }
    dp_poller_t p;
    dp__poller_init(&p, ctx, rd->period_ms, rd->probe_timeout_ms, rd->timeout_ms);
    dp__poller_set_ext(&p, ext, dp__now_ns());
    dp_outcome_t o;
    while (!dp__poller_step(&p, dp__now_ns(), check, arg, err, errlen, &o)) {
        uint64_t now = dp__now_ns();
        if (p.next_ns > now)
            dp_ctx_sleep(&p.ctx, (p.next_ns - now + 999999u) / 1000000u);
    }
    if (stats) {
        stats->probes = p.info.probes;
        stats->successes = p.info.successes;
        stats->failures = p.info.failures;
        stats->period_ms = p.last_wait_ms;
    }
    dp__poller_destroy(&p);
    return o;
}
