/* ctx.c - cancellation contexts: a flag, a deadline, a parent, and a file
 * descriptor that becomes readable when the context is done.
 *
 * The fd is a timerfd: armed at the effective deadline, so it turns readable
 * by itself when time runs out, and re-armed to fire at once on
 * cancellation. One fd thus covers both causes, which is what a plugin
 * blocked in poll(2) needs. Contexts create their fd only when asked (most
 * job attempts never need one), so a run allocates no fd per job.
 *
 * Cancelling from a signal handler sets the flag and re-arms the context's
 * own timerfd (a plain system call, no lock). Descendants learn of it through
 * the flag (dp_ctx_err walks the chain) and, for their fds, through
 * dp__ctx_wake_descendants, which the run's supervisor calls when it sees
 * the root's fd fire.
 *
 * Lock order: parent->mu before child->mu.
 */
#include "ctx.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util.h"

static void arm_fd(int fd, uint64_t when_ns)
{
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (when_ns == 0) {
        /* Fire now: the smallest relative expiry. */
        its.it_value.tv_nsec = 1;
        timerfd_settime(fd, 0, &its, NULL);
    } else {
        its.it_value.tv_sec = (time_t)(when_ns / 1000000000u);
        its.it_value.tv_nsec = (long)(when_ns % 1000000000u);
        timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);
    }
}

void dp__ctx_init(dp_ctx_t *ctx, dp_ctx_t *parent, uint64_t timeout_ms)
{
    dp__ctx_init_at(ctx, parent, timeout_ms, timeout_ms ? dp__now_ns() : 0);
}

void dp__ctx_init_at(dp_ctx_t *ctx, dp_ctx_t *parent, uint64_t timeout_ms, uint64_t now_ns)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->parent = parent;
    atomic_init(&ctx->err, 0);
    atomic_init(&ctx->fd, -1);
    atomic_init(&ctx->linked, false);
    pthread_mutex_init(&ctx->mu, NULL);
    uint64_t dl = 0;
    if (timeout_ms)
        dl = dp__sat_add(now_ns, dp__ms_to_ns(timeout_ms));
    if (parent && parent->deadline_ns && (dl == 0 || parent->deadline_ns < dl))
        dl = parent->deadline_ns;
    ctx->deadline_ns = dl;
}

static int ensure_fd(dp_ctx_t *ctx);

dp_ctx_t *dp_ctx_new(dp_ctx_t *parent, uint64_t timeout_ms)
{
    dp_ctx_t *ctx = malloc(sizeof *ctx);
    if (!ctx)
        return NULL;
    dp__ctx_init(ctx, parent, timeout_ms);
    ctx->heap = true;
    /* Every context made here gets its fd at once, root or not, so that
     * dp_ctx_cancel_from_signal always has something to wake: a handler can
     * only re-arm ctx's own fd (no locks, no walk of the children), and
     * waiters poll their own fd and their ancestors'. A child without an fd
     * of its own, cancelled from a signal, woke nobody: a run under it slept
     * on until its jobs ended by themselves. The engine's per-attempt
     * contexts (dp__ctx_init) still create theirs only on demand. */
    if (ensure_fd(ctx) < 0) {
        dp__ctx_destroy(ctx);
        free(ctx);
        return NULL;
    }
    return ctx;
}

/* Links ctx into its parent's child list (and the parent into its own, up
 * the chain), so cancellations reach ctx's fd. */
static void link_to_parent(dp_ctx_t *ctx)
{
    dp_ctx_t *p = ctx->parent;
    if (!p)
        return;
    link_to_parent(p);
    pthread_mutex_lock(&p->mu);
    if (!atomic_load_explicit(&ctx->linked, memory_order_relaxed)) {
        ctx->next = p->children;
        ctx->prev = NULL;
        if (p->children)
            p->children->prev = ctx;
        p->children = ctx;
        atomic_store_explicit(&ctx->linked, true, memory_order_release);
    }
    pthread_mutex_unlock(&p->mu);
}

static int ensure_fd(dp_ctx_t *ctx)
{
    int fd = atomic_load_explicit(&ctx->fd, memory_order_acquire);
    if (fd >= 0)
        return fd;
    pthread_mutex_lock(&ctx->mu);
    fd = atomic_load_explicit(&ctx->fd, memory_order_relaxed);
    if (fd < 0) {
        fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (fd >= 0) {
            if (ctx->deadline_ns)
                arm_fd(fd, ctx->deadline_ns);
            atomic_store_explicit(&ctx->fd, fd, memory_order_release);
        }
    }
    pthread_mutex_unlock(&ctx->mu);
    if (fd < 0)
        return -1;
    link_to_parent(ctx);
    /* A cancellation that happened before we were linked did not see us:
     * fire our own fd if we are already done. */
    if (dp_ctx_err(ctx))
        arm_fd(fd, 0);
    return fd;
}

int dp_ctx_fd(dp_ctx_t *ctx)
{
    return ctx ? ensure_fd(ctx) : -1;
}

void dp__ctx_destroy(dp_ctx_t *ctx)
{
    dp_ctx_t *p = ctx->parent;
    if (p && atomic_load_explicit(&ctx->linked, memory_order_acquire)) {
        pthread_mutex_lock(&p->mu);
        if (atomic_load_explicit(&ctx->linked, memory_order_relaxed)) {
            if (ctx->prev)
                ctx->prev->next = ctx->next;
            else
                p->children = ctx->next;
            if (ctx->next)
                ctx->next->prev = ctx->prev;
            atomic_store_explicit(&ctx->linked, false, memory_order_relaxed);
        }
        pthread_mutex_unlock(&p->mu);
    }
    int fd = atomic_load(&ctx->fd);
    if (fd >= 0)
        close(fd);
    pthread_mutex_destroy(&ctx->mu);
}

void dp_ctx_free(dp_ctx_t *ctx)
{
    if (!ctx)
        return;
    dp__ctx_destroy(ctx);
    if (ctx->heap)
        free(ctx);
}

static void wake_tree(dp_ctx_t *ctx)
{
    pthread_mutex_lock(&ctx->mu);
    for (dp_ctx_t *c = ctx->children; c; c = c->next) {
        int fd = atomic_load_explicit(&c->fd, memory_order_acquire);
        if (fd >= 0)
            arm_fd(fd, 0);
        wake_tree(c);
    }
    pthread_mutex_unlock(&ctx->mu);
}

void dp__ctx_wake_descendants(dp_ctx_t *ctx)
{
    wake_tree(ctx);
}

void dp_ctx_cancel(dp_ctx_t *ctx)
{
    if (!ctx)
        return;
    int expected = 0;
    atomic_compare_exchange_strong(&ctx->err, &expected, DP_ECANCELED);
    int fd = atomic_load_explicit(&ctx->fd, memory_order_acquire);
    if (fd >= 0)
        arm_fd(fd, 0);
    wake_tree(ctx);
}

void dp_ctx_cancel_from_signal(dp_ctx_t *ctx)
{
    if (!ctx)
        return;
    int saved = errno;
    int expected = 0;
    atomic_compare_exchange_strong(&ctx->err, &expected, DP_ECANCELED);
    int fd = atomic_load_explicit(&ctx->fd, memory_order_acquire);
    if (fd >= 0)
        arm_fd(fd, 0);
    errno = saved;
}

int dp_ctx_err(const dp_ctx_t *ctx)
{
    for (const dp_ctx_t *c = ctx; c; c = c->parent) {
        int e = atomic_load_explicit(&c->err, memory_order_acquire);
        if (e)
            return e;
    }
    if (ctx && ctx->deadline_ns && dp__now_ns() >= ctx->deadline_ns)
        return DP_ETIMEDOUT;
    return 0;
}

int dp__ctx_err_at(const dp_ctx_t *ctx, uint64_t now_ns)
{
    for (const dp_ctx_t *c = ctx; c; c = c->parent) {
        int e = atomic_load_explicit(&c->err, memory_order_acquire);
        if (e)
            return e;
    }
    if (ctx && ctx->deadline_ns && now_ns >= ctx->deadline_ns)
        return DP_ETIMEDOUT;
    return 0;
}

bool dp_ctx_done(const dp_ctx_t *ctx)
{
    return dp_ctx_err(ctx) != 0;
}

uint64_t dp_ctx_deadline_ns(const dp_ctx_t *ctx)
{
    return ctx ? ctx->deadline_ns : 0;
}

int64_t dp_ctx_remaining_ms(const dp_ctx_t *ctx)
{
    if (!ctx || !ctx->deadline_ns)
        return -1;
    uint64_t now = dp__now_ns();
    if (now >= ctx->deadline_ns)
        return 0;
    uint64_t left = ctx->deadline_ns - now;
    /* Round up so "remaining 0" means "passed". */
    return (int64_t)((left + 999999u) / 1000000u);
}

int dp__ctx_poll_fds(dp_ctx_t *ctx, int *fds, int max)
{
    int n = 0;
    int own = ensure_fd(ctx);
    if (own >= 0 && n < max)
        fds[n++] = own;
    for (dp_ctx_t *c = ctx->parent; c && n < max; c = c->parent) {
        int fd = atomic_load_explicit(&c->fd, memory_order_acquire);
        if (fd >= 0)
            fds[n++] = fd;
    }
    return n;
}

int dp_ctx_sleep(dp_ctx_t *ctx, uint64_t ms)
{
    int e = dp_ctx_err(ctx);
    if (e)
        return e;
    if (ms == 0)
        return 0;
    uint64_t until = dp__sat_add(dp__now_ns(), dp__ms_to_ns(ms));
    int fdv[16];
    /* No context: nothing can cut the sleep short (poll with no fd
     * merely sleeps). */
    int nfd = ctx ? dp__ctx_poll_fds(ctx, fdv, 16) : 0;
    struct pollfd pfd[16];
    for (int i = 0; i < nfd; i++) {
        pfd[i].fd = fdv[i];
        pfd[i].events = POLLIN;
    }
    for (;;) {
        e = dp_ctx_err(ctx);
        if (e)
            return e;
        uint64_t now = dp__now_ns();
        if (now >= until)
            return 0;
        uint64_t left_ms = (until - now + 999999u) / 1000000u;
        int timeout = left_ms > 1000000 ? 1000000 : (int)left_ms;
        int r = poll(pfd, (nfds_t)nfd, timeout);
        if (r < 0 && errno != EINTR)
            return DP_ESYS;
        /* A readable fd means done; dp_ctx_err at the loop top says how.
         * (With no fd at all, poll merely sleeps.) */
    }
}
