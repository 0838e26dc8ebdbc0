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
    /* The last probe failed and the wait goes on (fewer failures in a row
     * than the failure threshold): its message is in the step's err. */
    bool tolerated;
    unsigned successes, failures; /* consecutive, at the last probe */
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
    bool once; /* period 0 after an initial delay: the one probe decides */
    dp_poll_info_t info;
    /* dp_readiness_ext_t, normalised (dp__poller_set_ext): thresholds >= 1,
     * backoff 1 for none. */
    unsigned success_threshold, failure_threshold;
    double backoff;
    uint64_t max_period_ms; /* 0: no cap */
    uint64_t cur_period_ms; /* the wait after the next probe */
    uint64_t last_wait_ms;  /* the wait after the last probe (0: none yet) */
} dp_poller_t;

void dp__poller_init(dp_poller_t *p, dp_ctx_t *parent, uint64_t period_ms, uint64_t probe_timeout_ms,
                     uint64_t timeout_ms);

/* Applies a job's dp_readiness_ext_t (after dp__poller_init, before the
 * first step): thresholds, the growing period, and the initial delay (the
 * poller then starts waiting until now_ns + delay; with period 0, its one
 * probe decides). */
void dp__poller_set_ext(dp_poller_t *p, const dp_readiness_ext_t *x, uint64_t now_ns);

/* Whether x sets anything (zero everywhere, or thresholds 1 and backoff 1,
 * is the behaviour before dp_readiness_ext_t). */
bool dp__readiness_ext_set(const dp_readiness_ext_t *x);

/* Checks x against period_ms: NULL when valid, else why not (a constant
 * string, for messages). */
const char *dp__readiness_ext_invalid(const dp_readiness_ext_t *x, uint64_t period_ms);
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
