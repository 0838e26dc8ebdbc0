/* readiness.h - probes and polls (private parts). */
#ifndef DP_READINESS_H
#define DP_READINESS_H

#include "ctx.h"
#include "daggerpool/daggerpool.h"

/* How a poll ended, beyond its outcome: whether the poll's own timeout
 * passed (then outcome is DP_NOT_READY) and whether its parent context cut
 * it short (then outcome is DP_ERROR and the caller decides). */
typedef struct dp_poll_info {
    unsigned probes;
    bool poll_timed_out;
    bool parent_done;
} dp_poll_info_t;

/* A poll as a state machine, so that the wait between two probes need not
 * hold a thread: the engine parks a polling job until next_ns (or the
 * poll context's deadline, or cancellation) and calls dp__poller_step
 * again from whichever worker picks it up. dp__poll is the same machine
 * with a blocking sleep between the steps.
 *
 * The poller must not move after dp__poller_init (its context may be
 * linked into the parent's child list). */
typedef struct dp_poller {
    dp_ctx_t ctx; /* the poll: child of the caller's, readiness timeout */
    dp_ctx_t *parent;
    uint64_t period_ms, probe_timeout_ms, timeout_ms;
    uint64_t next_ns;       /* when waiting: the next probe is due */
    uint64_t last_probe_ns; /* how long the last probe took */
    uint64_t last_end_ns;   /* the clock when the last step ended */
    bool waiting;
    dp_poll_info_t info;
} dp_poller_t;

void dp__poller_init(dp_poller_t *p, dp_ctx_t *parent, uint64_t period_ms, uint64_t probe_timeout_ms,
                     uint64_t timeout_ms);
void dp__poller_destroy(dp_poller_t *p);

/* One step of the poll, now_ns a fresh reading of the clock: when waiting and the poll context is done, ends
 * the poll; when waiting and next_ns is still ahead, returns false at once
 * (call again later); otherwise probes once. Returns true when the poll is
 * over (*out is its outcome, as dp__poll's) and false when the caller must
 * wait until p->next_ns, or until the poll context (p->ctx) is done,
 * whichever comes first, and call again. */
bool dp__poller_step(dp_poller_t *p, uint64_t now_ns, dp_check_cb check, void *arg, char *err, size_t errlen,
                     dp_outcome_t *out);

/* The earliest time the poller needs its next step: min(next_ns, the poll
 * context's deadline). Cancellation may come earlier. */
uint64_t dp__poller_due_ns(const dp_poller_t *p);

dp_outcome_t dp__poll(dp_ctx_t *ctx, uint64_t period_ms, uint64_t probe_timeout_ms, uint64_t timeout_ms,
                      dp_check_cb check, void *arg, char *err, size_t errlen, dp_poll_info_t *info);

#endif
