/* readiness.h - probes and polls (private parts). */
#ifndef DP_READINESS_H
#define DP_READINESS_H

#include "daggerpool/daggerpool.h"

/* How a poll ended, beyond its outcome: whether the poll's own timeout
 * passed (then outcome is DP_NOT_READY) and whether its parent context cut
 * it short (then outcome is DP_ERROR and the caller decides). */
typedef struct dp_poll_info {
    unsigned probes;
    bool poll_timed_out;
    bool parent_done;
} dp_poll_info_t;

dp_outcome_t dp__poll(dp_ctx_t *ctx, uint64_t period_ms, uint64_t probe_timeout_ms,
                      uint64_t timeout_ms, dp_check_cb check, void *arg, char *err, size_t errlen,
                      dp_poll_info_t *info);

#endif
