/* test_snapshot.c - the store's snapshots of running jobs ("dp.running/<job>",
 * host/src/snapshot.c) are made when the store is read: every way of reading
 * the store (get_copy, with, foreach, count) sees them exactly while the job
 * is in progress, a value set under such a key by someone else is hidden
 * meanwhile and back after, and the runs that share a store see each
 * other's jobs. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "store.h"
#include "testutil.h"

typedef struct seen {
    char with[128];
    char copy[128];
    size_t count;
    size_t running; /* dp.running/ keys in foreach */
    size_t mine;    /* ... of which "dp.running/A" */
    char each[128]; /* its value there */
    bool ok;
} seen_t;

static seen_t seen_a;

static void with_cb(const void *value, size_t len, void *arg)
{
    snprintf(arg, 128, "%.*s", (int)len, (const char *)value);
}

static int each_cb(const char *key, const void *value, size_t len, void *arg)
{
    seen_t *s = arg;
    if (strncmp(key, DP_STORE_RUNNING_PREFIX, strlen(DP_STORE_RUNNING_PREFIX)) == 0) {
        s->running++;
        if (strcmp(key, DP_STORE_RUNNING_PREFIX "A") == 0) {
            s->mine++;
            snprintf(s->each, sizeof s->each, "%.*s", (int)len, (const char *)value);
        }
    }
    return 0;
}

/* A reads the store every way while it runs (B, its dependent, has not
 * started). */
static int look(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg)
{
    (void)tj;
    (void)is_check;
    seen_t *s = arg;
    dp_store_t *st = dp_job_store(job);
    s->ok = dp_store_with(st, DP_STORE_RUNNING_PREFIX "A", with_cb, s->with) == DP_OK;
    void *v = NULL;
    size_t len = 0;
    if (dp_store_get_copy(st, DP_STORE_RUNNING_PREFIX "A", &v, &len) == DP_OK) {
        snprintf(s->copy, sizeof s->copy, "%s", (char *)v);
        s->ok = s->ok && len == strlen(v);
        free(v);
    }
    s->count = dp_store_count(st);
    dp_store_foreach(st, each_cb, s);
    return -1;
}

static void test_every_read_sees_the_running_job(void **state)
{
    (void)state;
    memset(&seen_a, 0, sizeof seen_a);
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A;B:A", s);
    tu_hook(s, "A", look, &seen_a);
    dp_store_t *st = dp_store_new();
    assert_int_equal(dp_store_set_copy(st, "other", "x", 1), DP_OK);
    /* Someone else's value under A's key: hidden while A runs. */
    assert_int_equal(dp_store_set_copy(st, DP_STORE_RUNNING_PREFIX "A", "stale", 5), DP_OK);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.store = st;
    dp_result_t *r = tu_run(g, &o);
    tu_expect(r, "A=success B=success");
    assert_true(seen_a.ok);
    assert_string_equal(seen_a.with, seen_a.copy);
    assert_non_null(strstr(seen_a.with, "attempt=1 phase=run since_ms="));
    assert_string_equal(seen_a.each, seen_a.with);
    assert_int_equal(seen_a.mine, 1);    /* once, not the stale value too */
    assert_int_equal(seen_a.running, 1); /* B is not running */
    assert_int_equal(seen_a.count, 2);   /* "other" and A's snapshot */
    /* After the run: the stale value is back, nothing of the run's. */
    void *v = NULL;
    assert_int_equal(dp_store_get_copy(st, DP_STORE_RUNNING_PREFIX "A", &v, NULL), DP_OK);
    assert_string_equal(v, "stale");
    free(v);
    assert_int_equal(dp_store_count(st), 2);
    assert_int_equal(dp_store_get_copy(st, DP_STORE_RUNNING_PREFIX "B", &v, NULL), DP_ENOTFOUND);
    dp_result_free(r);
    dp_graph_free(g);
    dp_store_free(st);
    tu_script_free(s);
}

/* Two runs on one store at once: each job sees the other run's job. */
typedef struct pair {
    dp_store_t *st;
    const char *other;
    _Atomic int *both; /* how many of the two saw the other */
    _Atomic bool saw;
} pair_t;

static int see_other(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg)
{
    (void)job;
    (void)tj;
    (void)is_check;
    pair_t *p = arg;
    char key[64];
    snprintf(key, sizeof key, DP_STORE_RUNNING_PREFIX "%s", p->other);
    /* Both stay in their job until both saw the other (20 s at most). */
    for (int i = 0; i < 20000 && atomic_load(p->both) < 2; i++) {
        void *v = NULL;
        if (!atomic_load(&p->saw) && dp_store_get_copy(p->st, key, &v, NULL) == DP_OK) {
            if (strstr(v, "phase=run")) {
                atomic_store(&p->saw, true);
                atomic_fetch_add(p->both, 1);
            }
            free(v);
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

typedef struct runner {
    dp_graph_t *g;
    dp_store_t *st;
    dp_result_t *r;
} runner_t;

static void *run_thread(void *arg)
{
    runner_t *rn = arg;
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.store = rn->st;
    o.timeout_ms = 30000;
    rn->r = tu_run(rn->g, &o);
    return NULL;
}

static void test_two_runs_share_a_store(void **state)
{
    (void)state;
    _Atomic int both = 0;
    dp_store_t *st = dp_store_new();
    pair_t px = {.st = st, .other = "Y", .both = &both}, py = {.st = st, .other = "X", .both = &both};
    tu_script_t *sx = tu_script_new(), *sy = tu_script_new();
    dp_graph_t *gx = tu_graph("X", sx), *gy = tu_graph("Y", sy);
    tu_hook(sx, "X", see_other, &px);
    tu_hook(sy, "Y", see_other, &py);
    runner_t rx = {.g = gx, .st = st}, ry = {.g = gy, .st = st};
    pthread_t tx, ty;
    assert_int_equal(pthread_create(&tx, NULL, run_thread, &rx), 0);
    assert_int_equal(pthread_create(&ty, NULL, run_thread, &ry), 0);
    pthread_join(tx, NULL);
    pthread_join(ty, NULL);
    tu_expect(rx.r, "X=success");
    tu_expect(ry.r, "Y=success");
    assert_true(atomic_load(&px.saw));
    assert_true(atomic_load(&py.saw));
    assert_int_equal(dp_store_count(st), 0);
    dp_result_free(rx.r);
    dp_result_free(ry.r);
    dp_graph_free(gx);
    dp_graph_free(gy);
    tu_script_free(sx);
    tu_script_free(sy);
    dp_store_free(st);
}

/* A reader hammering the store while 4 workers run 250 short jobs 20 times
 * (every third fails once and retries after 1 ms): every snapshot it sees is
 * whole (a known phase, attempt 1 or 2, a time), a foreach sees at most the 4
 * jobs that may be in flight at one moment, and none is left after. */
typedef struct hammer {
    dp_store_t *st;
    _Atomic bool stop;
    _Atomic unsigned seen, bad, over;
} hammer_t;

static int check_entry(const char *key, const void *value, size_t len, void *arg)
{
    hammer_t *h = arg;
    unsigned attempt;
    unsigned long long ms;
    char phase[16];
    if (strncmp(key, DP_STORE_RUNNING_PREFIX, strlen(DP_STORE_RUNNING_PREFIX)) != 0)
        return 0;
    atomic_fetch_add(&h->seen, 1);
    if (len != strlen(value) || sscanf(value, "attempt=%u phase=%15s since_ms=%llu", &attempt, phase, &ms) != 3 ||
        attempt < 1 || attempt > 2 ||
        (strcmp(phase, "run") != 0 && strcmp(phase, "readiness") != 0 && strcmp(phase, "backoff") != 0))
        atomic_fetch_add(&h->bad, 1);
    return 0;
}

static void *hammer_main(void *arg)
{
    hammer_t *h = arg;
    while (!atomic_load(&h->stop)) {
        /* One moment: never more jobs in progress than may be in flight
         * (4, running or parked), though jobs end and start meanwhile. */
        unsigned before = atomic_load(&h->seen);
        dp_store_foreach(h->st, check_entry, h);
        if (atomic_load(&h->seen) - before > 4)
            atomic_fetch_add(&h->over, 1);
        void *v = NULL;
        if (dp_store_get_copy(h->st, DP_STORE_RUNNING_PREFIX "J001", &v, NULL) == DP_OK) {
            check_entry(DP_STORE_RUNNING_PREFIX "J001", v, strlen(v), h);
            free(v);
        }
        (void)dp_store_count(h->st);
    }
    return NULL;
}

static void test_reader_sees_whole_snapshots(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    char *spec = tu_spec_flat(250);
    for (unsigned i = 0; i < 250; i += 3) {
        char name[16];
        snprintf(name, sizeof name, "J%03u", i);
        tu_set(s, name, "fail=1 retries=1 backoff=1");
    }
    dp_graph_t *g = tu_graph(spec, s);
    hammer_t h = {.st = dp_store_new()};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hammer_main, &h), 0);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.store = h.st;
    o.max_concurrent_jobs = 4;
    for (int round = 0; round < 20; round++) {
        dp_result_t *r = tu_run(g, &o);
        assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
        dp_result_free(r);
        assert_int_equal(dp_store_count(h.st), 0);
    }
    atomic_store(&h.stop, true);
    assert_true(atomic_load(&h.seen) > 0);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&h.bad), 0);
    assert_int_equal(atomic_load(&h.over), 0);
    assert_int_equal(dp_store_count(h.st), 0);
    dp_graph_free(g);
    dp_store_free(h.st);
    free(spec);
    tu_script_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_read_sees_the_running_job),
        cmocka_unit_test(test_two_runs_share_a_store),
        cmocka_unit_test(test_reader_sees_whole_snapshots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
