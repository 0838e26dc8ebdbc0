/* ctx.h - the cancellation context (private parts).
 *
 * Lock order: a parent's mutex before a child's (cancellation walks down the
 * tree holding each level's lock while it visits the children).
 */
#ifndef DP_CTX_H
#define DP_CTX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"

struct dp_ctx {
    struct dp_ctx *parent;
    _Atomic int err;      /* own cancellation: 0 or DP_ECANCELED */
    uint64_t deadline_ns; /* effective (min with the parent's); 0: none */
    _Atomic int fd;       /* timerfd, created on demand; -1 until then */
    pthread_mutex_t mu;   /* guards fd creation and the child list */
    /* Children that may own an fd are linked here so that cancelling this
     * context can make their fds readable too. */
    struct dp_ctx *children;
    struct dp_ctx *next, *prev;
    /* In the parent's child list: written under the parent's mu; read
     * without it by dp__ctx_destroy, whose caller owns ctx (most contexts,
     * every readiness probe's among them, never get an fd, never link, and
     * so never take the parent's lock). */
    atomic_bool linked;
    bool heap; /* allocated by dp_ctx_new */
};

/* Initialises a context in caller-owned storage (no allocation), for the
 * engine's per-attempt contexts. Undo with dp__ctx_destroy. */
void dp__ctx_init(dp_ctx_t *ctx, dp_ctx_t *parent, uint64_t timeout_ms);
/* The same, with the caller's reading of the clock (readiness probes run by
 * the thousand, and a clock read is not free on a VM: bench/README.md,
 * "This machine"). */
void dp__ctx_init_at(dp_ctx_t *ctx, dp_ctx_t *parent, uint64_t timeout_ms, uint64_t now_ns);
/* dp_ctx_err with the caller's reading of the clock. */
int dp__ctx_err_at(const dp_ctx_t *ctx, uint64_t now_ns);
void dp__ctx_destroy(dp_ctx_t *ctx);

/* Makes the fds of every descendant readable (they are done because ctx
 * is). Used after a cancellation from a signal handler, which could only
 * touch ctx's own fd. */
void dp__ctx_wake_descendants(dp_ctx_t *ctx);

/* Fills fds with the fds to poll to learn that ctx is done: its own (created
 * if needed) and every ancestor's that exists. Returns how many (<= max). */
int dp__ctx_poll_fds(dp_ctx_t *ctx, int *fds, int max);

/* The context's own cancellation, ignoring ancestors and deadlines. */
static inline int dp__ctx_own_err(const dp_ctx_t *ctx)
{
    return atomic_load_explicit(&ctx->err, memory_order_acquire);
}

#endif /* DP_CTX_H */
