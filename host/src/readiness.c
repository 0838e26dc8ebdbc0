/* readiness.c - the seed's Prober and Poller.
 *
 * A probe is one check under a child context whose deadline is the probe
 * timeout; a check that is still running at that deadline (it should have
 * noticed the context) is reported as a timed-out probe. A poll probes at
 * once and then every period, sleeping on the poll's context so that
 * cancellation ends the wait at once.
 */
#include "readiness.h"

#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "util.h"

dp_outcome_t dp_probe(dp_ctx_t *ctx, uint64_t timeout_ms, dp_check_cb check, void *arg,
                      char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!check) {
        dp__seterr(err, errlen, DP_EINVAL, "no readiness check");
        return DP_ERROR;
    }
    int e = dp_ctx_err(ctx);
    if (e) {
        dp__seterr(err, errlen, e, "%s", dp_strerror(e));
        return DP_ERROR;
    }
    dp_ctx_t probe;
    dp__ctx_init(&probe, ctx, timeout_ms);
    dp_outcome_t o = check(&probe, arg, err, errlen);
    if (o != DP_READY && o != DP_NOT_READY && o != DP_ERROR) {
        dp__seterr(err, errlen, DP_EINVAL, "readiness check returned an invalid outcome %d",
                   (int)o);
        o = DP_ERROR;
    }
    /* The probe's own deadline passed (not the caller's): the probe timed
     * out, whatever the check answered late. */
    int pe = dp_ctx_err(&probe);
    int ce = dp_ctx_err(ctx);
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

dp_outcome_t dp__poll(dp_ctx_t *ctx, uint64_t period_ms, uint64_t probe_timeout_ms,
                      uint64_t timeout_ms, dp_check_cb check, void *arg, char *err, size_t errlen,
                      dp_poll_info_t *info)
{
    dp_poll_info_t local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    dp_ctx_t poll;
    dp__ctx_init(&poll, ctx, timeout_ms);
    dp_outcome_t o;
    for (;;) {
        info->probes++;
        o = dp_probe(&poll, probe_timeout_ms, check, arg, err, errlen);
        if (o == DP_READY)
            break;
        if (o == DP_ERROR) {
            /* An error caused by the poll's own deadline is the end of the
             * wait, not a failed check. */
            if (dp_ctx_err(ctx)) {
                info->parent_done = true;
            } else if (dp_ctx_err(&poll) == DP_ETIMEDOUT && timeout_ms) {
                info->poll_timed_out = true;
                o = DP_NOT_READY;
            }
            break;
        }
        int e = dp_ctx_sleep(&poll, period_ms ? period_ms : 1);
        if (e) {
            if (dp_ctx_err(ctx)) {
                info->parent_done = true;
                int ce = dp_ctx_err(ctx);
                dp__seterr(err, errlen, ce, "%s", dp_strerror(ce));
                o = DP_ERROR;
            } else {
                info->poll_timed_out = true;
                o = DP_NOT_READY;
            }
            break;
        }
    }
    dp__ctx_destroy(&poll);
    return o;
}

dp_outcome_t dp_poll(dp_ctx_t *ctx, uint64_t period_ms, uint64_t probe_timeout_ms,
                     uint64_t timeout_ms, dp_check_cb check, void *arg, char *err,
                     size_t errlen)
{
    return dp__poll(ctx, period_ms, probe_timeout_ms, timeout_ms, check, arg, err, errlen, NULL);
}
