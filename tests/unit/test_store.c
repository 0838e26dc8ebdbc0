/* test_store.c - the thread-safe key/value store (host/src/store.c): set,
 * get, delete, iterate in key order, ownership through free functions,
 * concurrent use, and the pool's snapshots of running jobs
 * ("dp.running/<job>") that exist exactly while a job is in progress. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "store.h"
#include "testutil.h"

static void msleep(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static _Atomic unsigned frees;
static void counting_free(void *p)
{
    atomic_fetch_add(&frees, 1);
    free(p);
}

static char *dup_str(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

/* The value of key as a string, or NULL if absent; static buffer. */
static const char *get(dp_store_t *st, const char *key)
{
    static char buf[512];
    void *v = NULL;
    size_t len = 0;
    int rc = dp_store_get_copy(st, key, &v, &len);
    if (rc == DP_ENOTFOUND)
        return NULL;
    assert_int_equal(rc, DP_OK);
    assert_int_equal(((char *)v)[len], '\0');
    snprintf(buf, sizeof buf, "%s", (char *)v);
    free(v);
    return buf;
}

static void test_set_get_delete(void **state)
{
    (void)state;
    dp_store_t *st = dp_store_new();
    assert_non_null(st);
    assert_int_equal(dp_store_count(st), 0);
    assert_null(get(st, "k"));
    assert_int_equal(dp_store_set_copy(st, "k", "value", 5), DP_OK);
    assert_string_equal(get(st, "k"), "value");
    assert_int_equal(dp_store_count(st), 1);
    assert_int_equal(dp_store_set_copy(st, "k", "other", 5), DP_OK); /* replace */
    assert_string_equal(get(st, "k"), "other");
    assert_int_equal(dp_store_count(st), 1);
    assert_int_equal(dp_store_delete(st, "k"), DP_OK);
    assert_null(get(st, "k"));
    assert_int_equal(dp_store_delete(st, "k"), DP_ENOTFOUND);
    assert_int_equal(dp_store_count(st), 0);
    dp_store_free(st);
    dp_store_free(NULL);
}

static void test_binary_and_empty_values(void **state)
{
    (void)state;
    dp_store_t *st = dp_store_new();
    const char bin[] = {'a', '\0', 'b', '\xff'};
    assert_int_equal(dp_store_set_copy(st, "bin", bin, sizeof bin), DP_OK);
    void *v;
    size_t len = 0;
    assert_int_equal(dp_store_get_copy(st, "bin", &v, &len), DP_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(v, bin, 4);
    free(v);
    assert_int_equal(dp_store_set_copy(st, "empty", NULL, 0), DP_OK);
    assert_int_equal(dp_store_get_copy(st, "empty", &v, &len), DP_OK);
    assert_int_equal(len, 0);
    assert_string_equal((char *)v, "");
    free(v);
    /* A NULL len pointer is fine. */
    assert_int_equal(dp_store_get_copy(st, "bin", &v, NULL), DP_OK);
    free(v);
    dp_store_free(st);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    dp_store_t *st = dp_store_new();
    void *v;
    assert_int_equal(dp_store_set(NULL, "k", NULL, 0, NULL), DP_EINVAL);
    assert_int_equal(dp_store_set(st, NULL, NULL, 0, NULL), DP_EINVAL);
    assert_int_equal(dp_store_set_copy(st, "k", NULL, 3), DP_EINVAL);
    assert_int_equal(dp_store_get_copy(st, "k", NULL, NULL), DP_EINVAL);
    assert_int_equal(dp_store_get_copy(NULL, "k", &v, NULL), DP_EINVAL);
    assert_int_equal(dp_store_delete(st, NULL), DP_EINVAL);
    assert_int_equal(dp_store_foreach(st, NULL, NULL), DP_EINVAL);
    assert_int_equal(dp_store_with(st, "k", NULL, NULL), DP_EINVAL);
    assert_int_equal(dp_store_count(NULL), 0);
    assert_int_equal(dp_store_count(st), 0);
    dp_store_free(st);
}

/* The free function runs exactly once per value: on replace, on delete, on
 * dp_store_free; never for a value stored without one. */
static void test_free_function_ownership(void **state)
{
    (void)state;
    atomic_store(&frees, 0);
    dp_store_t *st = dp_store_new();
    assert_int_equal(dp_store_set(st, "a", dup_str("1"), 1, counting_free), DP_OK);
    assert_int_equal(dp_store_set(st, "a", dup_str("2"), 1, counting_free), DP_OK);
    assert_int_equal(atomic_load(&frees), 1); /* the replaced "1" */
    assert_string_equal(get(st, "a"), "2");
    assert_int_equal(dp_store_set(st, "b", dup_str("3"), 1, counting_free), DP_OK);
    assert_int_equal(dp_store_delete(st, "b"), DP_OK);
    assert_int_equal(atomic_load(&frees), 2);
    static char fixed[] = "static";
    assert_int_equal(dp_store_set(st, "c", fixed, 6, NULL), DP_OK);
    assert_int_equal(dp_store_set(st, "d", dup_str("4"), 1, counting_free), DP_OK);
    dp_store_free(st);
    assert_int_equal(atomic_load(&frees), 4); /* "2" and "4"; never "static" */
    assert_string_equal(fixed, "static");
}

typedef struct seen {
    char keys[300][16];
    size_t n;
    size_t stop_at;
} seen_t;

static int collect(const char *key, const void *value, size_t len, void *arg)
{
    seen_t *s = arg;
    assert_non_null(value);
    assert_int_equal(len, strlen(key));
    snprintf(s->keys[s->n++], sizeof s->keys[0], "%s", key);
    return s->stop_at && s->n == s->stop_at ? 7 : 0;
}

/* 250 keys inserted in scrambled order (the table grows past its first
 * size): iteration is in key order; a non-zero return stops it. */
static void test_foreach_sorted_and_stops(void **state)
{
    (void)state;
    dp_store_t *st = dp_store_new();
    for (unsigned i = 0; i < 250; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%03u", (i * 97u) % 250u);
        assert_int_equal(dp_store_set_copy(st, key, key, strlen(key)), DP_OK);
    }
    assert_int_equal(dp_store_count(st), 250);
    seen_t *s = calloc(1, sizeof *s);
    assert_int_equal(dp_store_foreach(st, collect, s), 0);
    assert_int_equal(s->n, 250);
    for (size_t i = 1; i < s->n; i++)
        assert_true(strcmp(s->keys[i - 1], s->keys[i]) < 0);
    assert_string_equal(s->keys[0], "key000");
    assert_string_equal(s->keys[249], "key249");
    memset(s, 0, sizeof *s);
    s->stop_at = 5;
    assert_int_equal(dp_store_foreach(st, collect, s), 7);
    assert_int_equal(s->n, 5);
    assert_string_equal(s->keys[4], "key004");
    free(s);
    /* Every value still reads back after the growth. */
    assert_string_equal(get(st, "key123"), "key123");
    dp_store_free(st);

    /* An empty store iterates over nothing. */
    st = dp_store_new();
    seen_t e = {0};
    assert_int_equal(dp_store_foreach(st, collect, &e), 0);
    assert_int_equal(e.n, 0);
    dp_store_free(st);
}

static void peek(const void *value, size_t len, void *arg)
{
    snprintf(arg, 64, "%.*s", (int)len, (const char *)value);
}

static void test_with_looks_under_the_lock(void **state)
{
    (void)state;
    dp_store_t *st = dp_store_new();
    dp_store_set_copy(st, "k", "hello", 5);
    char buf[64] = "";
    assert_int_equal(dp_store_with(st, "k", peek, buf), DP_OK);
    assert_string_equal(buf, "hello");
    assert_int_equal(dp_store_with(st, "nope", peek, buf), DP_ENOTFOUND);
    dp_store_free(st);
}

/* Several threads at once: private keys set, read back and deleted, one
 * shared key replaced by everyone, iteration in between. No value is lost
 * or freed twice (counted), and TSan/ASan watch the rest. */
typedef struct worker {
    dp_store_t *st;
    unsigned index;
    unsigned sets;
    unsigned wrong;
    pthread_t t;
} worker_t;

static int count_cb(const char *key, const void *value, size_t len, void *arg)
{
    (void)key;
    (void)value;
    (void)len;
    (*(size_t *)arg)++;
    return 0;
}

static void *store_worker(void *p)
{
    worker_t *w = p;
    char key[32], val[32];
    for (unsigned i = 0; i < 1500; i++) {
        snprintf(key, sizeof key, "t%u/%u", w->index, i % 100);
        snprintf(val, sizeof val, "%u:%u", w->index, i);
        char *v = strdup(val);
        if (dp_store_set(w->st, key, v, strlen(v), counting_free) != DP_OK) {
            free(v);
            w->wrong++;
            continue;
        }
        w->sets++;
        void *out;
        size_t len;
        if (dp_store_get_copy(w->st, key, &out, &len) != DP_OK || strcmp(out, val) != 0)
            w->wrong++;
        else
            free(out);
        if (i % 3 == 0 && dp_store_delete(w->st, key) != DP_OK)
            w->wrong++;
        char *sv = strdup(val);
        if (dp_store_set(w->st, "shared", sv, strlen(sv), counting_free) == DP_OK)
            w->sets++;
        else
            free(sv);
        if (i % 100 == 0) {
            size_t n = 0;
            dp_store_foreach(w->st, count_cb, &n);
            if (n == 0)
                w->wrong++; /* "shared" is always there */
        }
    }
    return NULL;
}

static void test_concurrent_use(void **state)
{
    (void)state;
    atomic_store(&frees, 0);
    dp_store_t *st = dp_store_new();
    dp_store_set(st, "shared", dup_str("x"), 1, counting_free);
    worker_t w[4];
    for (unsigned i = 0; i < 4; i++) {
        w[i] = (worker_t){.st = st, .index = i};
        assert_int_equal(pthread_create(&w[i].t, NULL, store_worker, &w[i]), 0);
    }
    unsigned sets = 1;
    for (unsigned i = 0; i < 4; i++) {
        pthread_join(w[i].t, NULL);
        assert_int_equal(w[i].wrong, 0);
        sets += w[i].sets;
    }
    /* Each thread leaves its keys whose last write (i = 1400..1499) was
     * not deleted: i % 3 != 0. */
    size_t left = 0;
    for (unsigned i = 1400; i < 1500; i++)
        left += i % 3 != 0;
    assert_int_equal(dp_store_count(st), 4 * left + 1);
    dp_store_free(st);
    assert_int_equal(atomic_load(&frees), sets);
}

/* ------------------------------------------------------------------------ */
/* The pool's snapshots                                                      */
/* ------------------------------------------------------------------------ */

static int count_running(const char *key, const void *value, size_t len, void *arg)
{
    (void)value;
    (void)len;
    if (strncmp(key, DP_STORE_RUNNING_PREFIX, strlen(DP_STORE_RUNNING_PREFIX)) == 0)
        (*(size_t *)arg)++;
    return 0;
}

static _Atomic unsigned snap_ok, snap_bad, snap_max;

/* In run and in check: my own snapshot is there, with my attempt and
 * phase; never more snapshots than jobs can run at once (4). */
static int look_at_snapshot(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg)
{
    (void)arg;
    dp_store_t *st = dp_job_store(job);
    char key[128], want[64];
    snprintf(key, sizeof key, DP_STORE_RUNNING_PREFIX "%s", tj->name);
    snprintf(want, sizeof want, "attempt=%u phase=%s", dp_job_attempt(job), is_check ? "readiness" : "run");
    void *v = NULL;
    if (st && dp_store_get_copy(st, key, &v, NULL) == DP_OK && strstr(v, want) == v && strstr(v, "since_ms="))
        atomic_fetch_add(&snap_ok, 1);
    else
        atomic_fetch_add(&snap_bad, 1);
    free(v);
    size_t n = 0;
    if (st)
        dp_store_foreach(st, count_running, &n);
    unsigned cur = atomic_load(&snap_max);
    while (n > cur && !atomic_compare_exchange_weak(&snap_max, &cur, (unsigned)n))
        ;
    /* Something of the job's own that outlives the run. */
    if (st && !is_check) {
        snprintf(key, sizeof key, "mine/%s", tj->name);
        dp_store_set_copy(st, key, "kept", 4);
    }
    return -1;
}

static void test_running_snapshots(void **state)
{
    (void)state;
    atomic_store(&snap_ok, 0);
    atomic_store(&snap_bad, 0);
    atomic_store(&snap_max, 0);
    tu_script_t *s = tu_script_new();
    tu_set(s, "*", "rendezvous=4 sleep=2");
    tu_set(s, "J003", "fail=1 retries=1");
    tu_set(s, "J005", "check=ready");
    char *spec = tu_spec_flat(16);
    dp_graph_t *g = tu_graph(spec, s);
    for (size_t i = 0; i < 16; i++)
        tu_hook(s, dp_graph_job_name(g, i), look_at_snapshot, NULL);
    dp_store_t *st = dp_store_new();
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.max_concurrent_jobs = 4;
    o.store = st;
    dp_result_t *r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    /* 16 runs + 1 retry + 1 check, each saw its own snapshot. */
    assert_int_equal(atomic_load(&snap_bad), 0);
    assert_int_equal(atomic_load(&snap_ok), 18);
    assert_true(atomic_load(&snap_max) >= 1 && atomic_load(&snap_max) <= 4);
    /* After the run: no snapshot left, the jobs' own keys kept. */
    size_t n = 0;
    dp_store_foreach(st, count_running, &n);
    assert_int_equal(n, 0);
    assert_int_equal(dp_store_count(st), 16);
    assert_string_equal(get(st, "mine/J000"), "kept");
    dp_result_free(r);

    /* The store lives on across runs. */
    r = tu_run(g, &o);
    assert_int_equal(dp_store_count(st), 16);
    dp_result_free(r);

    /* Without a store, jobs get NULL and nothing breaks. */
    o.store = NULL;
    atomic_store(&snap_ok, 0);
    atomic_store(&snap_bad, 0);
    r = tu_run(g, &o);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    assert_int_equal(atomic_load(&snap_ok), 0);
    dp_result_free(r);
    dp_graph_free(g);
    dp_store_free(st);
    free(spec);
    tu_script_free(s);
}

/* While a job waits out its backoff, its snapshot says so; a job cut by
 * the timeout leaves no snapshot behind. */
typedef struct watcher {
    dp_store_t *st;
    _Atomic bool saw_backoff;
    _Atomic bool stop;
    pthread_t t;
} watcher_t;

static void *watch_backoff(void *p)
{
    watcher_t *w = p;
    while (!atomic_load(&w->stop)) {
        void *v = NULL;
        if (dp_store_get_copy(w->st, DP_STORE_RUNNING_PREFIX "R", &v, NULL) == DP_OK) {
            if (strstr(v, "phase=backoff"))
                atomic_store(&w->saw_backoff, true);
            free(v);
        }
        msleep(1);
    }
    return NULL;
}

static void test_backoff_snapshot_and_cleanup(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    tu_set(s, "R", "error retries=3 backoff=10000");
    tu_set(s, "B", "block");
    dp_graph_t *g = tu_graph("R;B;C:R", s);
    watcher_t w = {.st = dp_store_new()};
    assert_int_equal(pthread_create(&w.t, NULL, watch_backoff, &w), 0);
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.store = w.st;
    /* Long enough for the watcher to get a CPU during R's backoff under
     * TSan on a loaded 2-CPU machine (250 ms was not, once). */
    o.timeout_ms = 1000;
    dp_result_t *r = tu_run(g, &o);
    atomic_store(&w.stop, true);
    pthread_join(w.t, NULL);
    tu_expect(r, "R=unknown B=unknown C=unknown");
    assert_true(atomic_load(&w.saw_backoff));
    assert_int_equal(dp_store_count(w.st), 0);
    dp_result_free(r);
    dp_graph_free(g);
    dp_store_free(w.st);
    tu_script_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_delete),
        cmocka_unit_test(test_binary_and_empty_values),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_free_function_ownership),
        cmocka_unit_test(test_foreach_sorted_and_stops),
        cmocka_unit_test(test_with_looks_under_the_lock),
        cmocka_unit_test(test_concurrent_use),
        cmocka_unit_test(test_running_snapshots),
        cmocka_unit_test(test_backoff_snapshot_and_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
