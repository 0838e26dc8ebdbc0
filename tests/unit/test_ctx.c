/* test_ctx.c - cancellation contexts (host/src/ctx.c): cancel flag and its
 * propagation, deadlines and their inheritance, the cancellable sleep, the
 * fd that turns readable on cancellation or deadline, and cancellation from
 * a real signal handler, on its own and stopping a run. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "testutil.h"

static void msleep(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Is fd readable within timeout_ms? */
static bool readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0);
    return r == 1 && (p.revents & POLLIN);
}

typedef struct later {
    dp_ctx_t *ctx;
    unsigned delay_ms;
    pthread_t t;
} later_t;

static void *later_main(void *p)
{
    later_t *l = p;
    msleep(l->delay_ms);
    dp_ctx_cancel(l->ctx);
    return NULL;
}

static void cancel_later(later_t *l, dp_ctx_t *ctx, unsigned delay_ms)
{
    l->ctx = ctx;
    l->delay_ms = delay_ms;
    assert_int_equal(pthread_create(&l->t, NULL, later_main, l), 0);
}

/* ------------------------------------------------------------------------ */
/* Flag and deadline                                                         */
/* ------------------------------------------------------------------------ */

static void test_new_context_is_live(void **state)
{
    (void)state;
    dp_ctx_t *c = dp_ctx_new(NULL, 0);
    assert_non_null(c);
    assert_int_equal(dp_ctx_err(c), 0);
    assert_false(dp_ctx_done(c));
    assert_int_equal(dp_ctx_remaining_ms(c), -1);
    assert_int_equal(dp_ctx_deadline_ns(c), 0);
    int fd = dp_ctx_fd(c);
    assert_true(fd >= 0);
    assert_false(readable(fd, 0));
    assert_int_equal(dp_ctx_fd(c), fd); /* the same fd every time */
    dp_ctx_free(c);
    /* NULL is tolerated where it makes sense. */
    dp_ctx_cancel(NULL);
    dp_ctx_cancel_from_signal(NULL);
    dp_ctx_free(NULL);
    assert_int_equal(dp_ctx_fd(NULL), -1);
    assert_int_equal(dp_ctx_err(NULL), 0);
}

static void test_cancel_is_idempotent(void **state)
{
    (void)state;
    dp_ctx_t *c = dp_ctx_new(NULL, 0);
    dp_ctx_cancel(c);
    assert_int_equal(dp_ctx_err(c), DP_ECANCELED);
    dp_ctx_cancel(c);
    assert_int_equal(dp_ctx_err(c), DP_ECANCELED);
    assert_true(dp_ctx_done(c));
    dp_ctx_free(c);
}

static void test_cancel_propagates_down_not_up(void **state)
{
    (void)state;
    dp_ctx_t *root = dp_ctx_new(NULL, 0);
    dp_ctx_t *a = dp_ctx_new(root, 0);
    dp_ctx_t *a1 = dp_ctx_new(a, 0);
    dp_ctx_t *b = dp_ctx_new(root, 0);
    dp_ctx_cancel(a);
    assert_int_equal(dp_ctx_err(a), DP_ECANCELED);
    assert_int_equal(dp_ctx_err(a1), DP_ECANCELED);
    assert_int_equal(dp_ctx_err(root), 0);
    assert_int_equal(dp_ctx_err(b), 0);
    dp_ctx_cancel(root);
    assert_int_equal(dp_ctx_err(b), DP_ECANCELED);
    /* A child made after the cancellation is born done. */
    dp_ctx_t *late = dp_ctx_new(root, 0);
    assert_int_equal(dp_ctx_err(late), DP_ECANCELED);
    dp_ctx_free(late);
    dp_ctx_free(a1);
    dp_ctx_free(a);
    dp_ctx_free(b);
    dp_ctx_free(root);
}

static void test_deadline_passes(void **state)
{
    (void)state;
    dp_ctx_t *c = dp_ctx_new(NULL, 30);
    int64_t rem = dp_ctx_remaining_ms(c);
    assert_true(rem > 0 && rem <= 30);
    assert_true(dp_ctx_deadline_ns(c) > 0);
    assert_int_equal(dp_ctx_err(c), 0);
    msleep(40);
    assert_int_equal(dp_ctx_err(c), DP_ETIMEDOUT);
    assert_int_equal(dp_ctx_remaining_ms(c), 0);
    /* Cancellation after the deadline: the flag is reported first. */
    dp_ctx_cancel(c);
    assert_int_equal(dp_ctx_err(c), DP_ECANCELED);
    dp_ctx_free(c);

    /* A child of an expired parent is born timed out. */
    dp_ctx_t *p = dp_ctx_new(NULL, 10);
    msleep(20);
    dp_ctx_t *ch = dp_ctx_new(p, 10000);
    assert_int_equal(dp_ctx_err(ch), DP_ETIMEDOUT);
    dp_ctx_free(ch);
    dp_ctx_free(p);
}

/* A child's deadline is the earlier of its own and its parent's: it never
 * outlives the parent. */
static void test_deadline_inheritance(void **state)
{
    (void)state;
    dp_ctx_t *p = dp_ctx_new(NULL, 200);
    uint64_t pd = dp_ctx_deadline_ns(p);
    dp_ctx_t *longer = dp_ctx_new(p, 100000);
    dp_ctx_t *none = dp_ctx_new(p, 0);
    dp_ctx_t *shorter = dp_ctx_new(p, 50);
    dp_ctx_t *grand = dp_ctx_new(shorter, 100000);
    assert_int_equal(dp_ctx_deadline_ns(longer), pd);
    assert_int_equal(dp_ctx_deadline_ns(none), pd);
    assert_true(dp_ctx_deadline_ns(shorter) < pd);
    assert_int_equal(dp_ctx_deadline_ns(grand), dp_ctx_deadline_ns(shorter));
    assert_true(dp_ctx_remaining_ms(longer) <= 200);
    assert_true(dp_ctx_remaining_ms(grand) <= 50);
    /* No deadline above: the child's own. */
    dp_ctx_t *r = dp_ctx_new(NULL, 0);
    dp_ctx_t *own = dp_ctx_new(r, 70);
    int64_t rem = dp_ctx_remaining_ms(own);
    assert_true(rem > 0 && rem <= 70);
    dp_ctx_free(own);
    dp_ctx_free(r);
    dp_ctx_free(grand);
    dp_ctx_free(shorter);
    dp_ctx_free(none);
    dp_ctx_free(longer);
    dp_ctx_free(p);
}

/* ------------------------------------------------------------------------ */
/* Sleep                                                                     */
/* ------------------------------------------------------------------------ */

static void test_sleep_full(void **state)
{
    (void)state;
    dp_ctx_t *c = dp_ctx_new(NULL, 0);
    uint64_t t0 = dp_test_now_ms();
    assert_int_equal(dp_ctx_sleep(c, 30), 0);
    assert_true(dp_test_now_ms() - t0 >= 30);
    assert_int_equal(dp_ctx_sleep(c, 0), 0);
    dp_ctx_free(c);
    /* Without a context it simply sleeps. */
    t0 = dp_test_now_ms();
    assert_int_equal(dp_ctx_sleep(NULL, 20), 0);
    assert_true(dp_test_now_ms() - t0 >= 20);
}

static void test_sleep_returns_at_once_when_done(void **state)
{
    (void)state;
    dp_ctx_t *c = dp_ctx_new(NULL, 0);
    dp_ctx_cancel(c);
    uint64_t t0 = dp_test_now_ms();
    assert_int_equal(dp_ctx_sleep(c, 10000), DP_ECANCELED);
    assert_true(dp_test_now_ms() - t0 < 1000);
    dp_ctx_free(c);
}

static void test_sleep_woken_by_cancel(void **state)
{
    (void)state;
    /* The context itself, then a child (woken through its parent). */
    for (int child = 0; child < 2; child++) {
        dp_ctx_t *root = dp_ctx_new(NULL, 0);
        dp_ctx_t *c = child ? dp_ctx_new(root, 0) : root;
        later_t l;
        /* t0 before the canceller starts: its delay counts from its start. */
        uint64_t t0 = dp_test_now_ms();
        cancel_later(&l, root, 30);
        assert_int_equal(dp_ctx_sleep(c, 10000), DP_ECANCELED);
        uint64_t took = dp_test_now_ms() - t0;
        pthread_join(l.t, NULL);
        if (took < 25 || took >= 2000)
            fail_msg("%s: woken after %llu ms, cancelled after 30 ms", child ? "child" : "root",
                     (unsigned long long)took);
        if (child)
            dp_ctx_free(c);
        dp_ctx_free(root);
    }
}

static void test_sleep_until_deadline(void **state)
{
    (void)state;
    dp_ctx_t *p = dp_ctx_new(NULL, 40);
    dp_ctx_t *c = dp_ctx_new(p, 0);
    uint64_t t0 = dp_test_now_ms();
    assert_int_equal(dp_ctx_sleep(c, 10000), DP_ETIMEDOUT);
    uint64_t took = dp_test_now_ms() - t0;
    assert_true(took >= 39 && took < 2000);
    dp_ctx_free(c);
    dp_ctx_free(p);
}

/* ------------------------------------------------------------------------ */
/* The fd                                                                    */
/* ------------------------------------------------------------------------ */

static void test_fd_readable_on_cancel(void **state)
{
    (void)state;
    dp_ctx_t *c = dp_ctx_new(NULL, 0);
    int fd = dp_ctx_fd(c);
    assert_false(readable(fd, 0));
    later_t l;
    /* t0 before the canceller starts: its delay counts from its start. */
    uint64_t t0 = dp_test_now_ms();
    cancel_later(&l, c, 30);
    assert_true(readable(fd, 5000));
    assert_true(dp_test_now_ms() - t0 < 2000);
    pthread_join(l.t, NULL);
    assert_true(readable(fd, 0)); /* stays readable */
    dp_ctx_free(c);
}

static void test_fd_readable_on_deadline(void **state)
{
    (void)state;
    dp_ctx_t *c = dp_ctx_new(NULL, 40);
    int fd = dp_ctx_fd(c);
    assert_false(readable(fd, 0));
    uint64_t t0 = dp_test_now_ms();
    assert_true(readable(fd, 5000));
    uint64_t took = dp_test_now_ms() - t0;
    assert_true(took >= 35 && took < 2000);
    assert_int_equal(dp_ctx_err(c), DP_ETIMEDOUT);
    dp_ctx_free(c);
}

/* Children's fds: made before the parent's cancellation, they turn
 * readable with it; made after, they are readable at once; a grandchild
 * under a middle context without an fd of its own is reached too; and a
 * child's fd fires at the deadline it inherits. */
static void test_child_fds(void **state)
{
    (void)state;
    dp_ctx_t *root = dp_ctx_new(NULL, 0);
    dp_ctx_t *mid = dp_ctx_new(root, 0);
    dp_ctx_t *a = dp_ctx_new(root, 0);
    dp_ctx_t *grand = dp_ctx_new(mid, 0);
    int fa = dp_ctx_fd(a), fg = dp_ctx_fd(grand);
    assert_false(readable(fa, 0));
    assert_false(readable(fg, 0));
    later_t l;
    cancel_later(&l, root, 20);
    assert_true(readable(fg, 5000));
    assert_true(readable(fa, 5000));
    pthread_join(l.t, NULL);
    dp_ctx_t *late = dp_ctx_new(mid, 0);
    assert_true(readable(dp_ctx_fd(late), 0));
    dp_ctx_free(late);
    dp_ctx_free(grand);
    dp_ctx_free(a);
    dp_ctx_free(mid);
    dp_ctx_free(root);

    dp_ctx_t *p = dp_ctx_new(NULL, 40);
    dp_ctx_t *c = dp_ctx_new(p, 0);
    uint64_t t0 = dp_test_now_ms();
    assert_true(readable(dp_ctx_fd(c), 5000));
    assert_true(dp_test_now_ms() - t0 >= 35);
    dp_ctx_free(c);
    dp_ctx_free(p);
}

/* Children come and go on several threads while the root is cancelled:
 * the child list stays consistent (TSan/ASan watch), and every sleep after
 * the cancellation returns at once. */
static dp_ctx_t *churn_root;
static _Atomic unsigned churn_after_cancel, churn_wrong;

/* No cmocka asserts off the main thread: count what goes wrong. */
static void *churn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        dp_ctx_t *c = dp_ctx_new(churn_root, 0);
        if (!c || dp_ctx_fd(c) < 0) {
            atomic_fetch_add(&churn_wrong, 1);
            dp_ctx_free(c);
            continue;
        }
        bool was_done = dp_ctx_done(churn_root);
        uint64_t t0 = dp_test_now_ms();
        int e = dp_ctx_sleep(c, was_done ? 10000 : 1);
        if (was_done) {
            if (e != DP_ECANCELED || dp_test_now_ms() - t0 > 1000)
                atomic_fetch_add(&churn_wrong, 1);
            atomic_fetch_add(&churn_after_cancel, 1);
        }
        dp_ctx_free(c);
    }
    return NULL;
}

static void test_children_churn_while_cancelling(void **state)
{
    (void)state;
    churn_root = dp_ctx_new(NULL, 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, NULL), 0);
    msleep(20);
    dp_ctx_cancel(churn_root);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_true(atomic_load(&churn_after_cancel) > 0);
    assert_int_equal(atomic_load(&churn_wrong), 0);
    dp_ctx_free(churn_root);
}

/* ------------------------------------------------------------------------ */
/* Signals                                                                   */
/* ------------------------------------------------------------------------ */

static dp_ctx_t *_Atomic sig_ctx;
static volatile sig_atomic_t sig_count;

static void on_sigusr1(int sig)
{
    (void)sig;
    sig_count++;
    dp_ctx_cancel_from_signal(atomic_load(&sig_ctx));
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
}

/* Blocks (or unblocks) SIGUSR1 in the calling thread; threads it creates
 * afterwards inherit the mask. With the main thread and the pool's workers
 * blocking it, the handler runs on the raiser thread, so no EINTR in the
 * waiting threads can help: only the fds wake them, as when a signal lands
 * on some unrelated thread of an embedding program. */
static void block_sigusr1(bool block)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    assert_int_equal(pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL), 0);
}

static void restore_handler(void)
{
    signal(SIGUSR1, SIG_DFL);
    atomic_store(&sig_ctx, NULL);
}

/* Sends SIGUSR1 to the process after delay_ms (any thread may take it). */
typedef struct raiser {
    unsigned delay_ms;
    tu_script_t *wait_for; /* optional: wait until this many jobs run */
    int running;
    pthread_t t;
} raiser_t;

static void *raiser_main(void *p)
{
    raiser_t *r = p;
    if (r->wait_for) {
        uint64_t until = dp_test_now_ms() + 5000;
        while (atomic_load(&r->wait_for->running) < r->running && dp_test_now_ms() < until)
            msleep(1);
    }
    msleep(r->delay_ms);
    kill(getpid(), SIGUSR1);
    return NULL;
}

/* A sleep on the context and on a child of it, and a poll on the fd, end
 * promptly when a signal handler cancels the context. */
static void test_cancel_from_signal_handler(void **state)
{
    (void)state;
    install_handler();
    dp_ctx_t *root = dp_ctx_new(NULL, 0);
    dp_ctx_t *child = dp_ctx_new(root, 0);
    atomic_store(&sig_ctx, root);
    raiser_t r = {.delay_ms = 30};
    assert_int_equal(pthread_create(&r.t, NULL, raiser_main, &r), 0);
    block_sigusr1(true);
    uint64_t t0 = dp_test_now_ms();
    assert_int_equal(dp_ctx_sleep(child, 10000), DP_ECANCELED);
    assert_true(dp_test_now_ms() - t0 < 3000);
    pthread_join(r.t, NULL);
    block_sigusr1(false);
    assert_true(sig_count >= 1);
    assert_int_equal(dp_ctx_err(root), DP_ECANCELED);
    assert_true(readable(dp_ctx_fd(root), 0));
    assert_int_equal(dp_ctx_sleep(root, 10000), DP_ECANCELED);
    dp_ctx_free(child);
    dp_ctx_free(root);
    restore_handler();
}

/* Jobs that wait in poll(2) on their attempt context's fd (they have a
 * timeout, so an attempt context of their own) and jobs sleeping on the
 * run's context. */
static int wait_on_fd(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg)
{
    (void)is_check;
    (void)arg;
    int fd = dp_job_ctx(job) ? dp_ctx_fd(dp_job_ctx(job)) : -1;
    if (fd < 0)
        return (int)dp_job_fail(job, false, "no fd");
    if (!readable(fd, 10000))
        return (int)dp_job_fail(job, false, "%s: fd never became readable", tj->name);
    atomic_store(&tj->saw_cancel, true);
    return (int)dp_job_fail(job, false, "%s: cancelled", tj->name);
}

static void run_cancelled_by_signal(bool nested_parent)
{
    install_handler();
    dp_ctx_t *root = dp_ctx_new(NULL, 0);
    /* The run's parent: the root itself, or a context under it (an
     * embedder's per-run context under its process-wide one). */
    dp_ctx_t *parent = nested_parent ? dp_ctx_new(root, 0) : root;
    atomic_store(&sig_ctx, parent);
    tu_script_t *s = tu_script_new();
    tu_set(s, "F1,F2", "timeout=600000");
    tu_hook(s, "F1,F2", wait_on_fd, NULL);
    tu_set(s, "S1,S2", "block");
    dp_graph_t *g = tu_graph("F1;F2;S1;S2;A:F1;B:S1;C:A,B;D;E:D;F:E;G:F;H", s);
    raiser_t r = {.delay_ms = 10, .wait_for = s, .running = 4};
    assert_int_equal(pthread_create(&r.t, NULL, raiser_main, &r), 0);
    block_sigusr1(true);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = 4;
    o.parent = parent;
    uint64_t t0 = dp_test_now_ms();
    dp_result_t *res = tu_run(g, &o);
    uint64_t took = dp_test_now_ms() - t0;
    pthread_join(r.t, NULL);
    block_sigusr1(false);
    if (took >= 3000)
        fail_msg("the run took %llu ms to notice the signal", (unsigned long long)took);
    assert_int_equal(dp_result_outcome(res), DP_RUN_CANCELLED);
    assert_true(dp_result_cancelled(res));
    tu_expect(res, "F1=unknown F2=unknown S1=unknown S2=unknown A=unknown C=unknown");
    assert_true(atomic_load(&tu_job(s, "F1")->saw_cancel));
    assert_true(atomic_load(&tu_job(s, "S1")->saw_cancel));
    dp_result_free(res);
    dp_graph_free(g);
    tu_script_free(s);
    if (nested_parent)
        dp_ctx_free(parent);
    dp_ctx_free(root);
    restore_handler();
}

static void test_signal_cancels_run(void **state)
{
    (void)state;
    run_cancelled_by_signal(false);
}

static void test_signal_cancels_run_under_nested_parent(void **state)
{
    (void)state;
    run_cancelled_by_signal(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_context_is_live),
        cmocka_unit_test(test_cancel_is_idempotent),
        cmocka_unit_test(test_cancel_propagates_down_not_up),
        cmocka_unit_test(test_deadline_passes),
        cmocka_unit_test(test_deadline_inheritance),
        cmocka_unit_test(test_sleep_full),
        cmocka_unit_test(test_sleep_returns_at_once_when_done),
        cmocka_unit_test(test_sleep_woken_by_cancel),
        cmocka_unit_test(test_sleep_until_deadline),
        cmocka_unit_test(test_fd_readable_on_cancel),
        cmocka_unit_test(test_fd_readable_on_deadline),
        cmocka_unit_test(test_child_fds),
        cmocka_unit_test(test_children_churn_while_cancelling),
        cmocka_unit_test(test_cancel_from_signal_handler),
        cmocka_unit_test(test_signal_cancels_run),
        cmocka_unit_test(test_signal_cancels_run_under_nested_parent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
