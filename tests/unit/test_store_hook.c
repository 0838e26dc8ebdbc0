/* test_store_hook.c - the store's persistence hook (dp_store_set_hook,
 * host/src/store.c): called once per set and delete, in order, with the
 * value as stored; not for a failed change; gone once removed; and what a
 * run's jobs write reaches it (the plugin host API's path, dp_job_store). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"

/* What the hook saw, one line per call: "set KEY=VALUE" or "del KEY". */
typedef struct seen {
    pthread_mutex_t mu;
    char log[8192];
    unsigned calls;
} seen_t;

static void hook(void *user, const char *key, const void *value, size_t len, bool deleted)
{
    seen_t *s = user;
    pthread_mutex_lock(&s->mu);
    size_t n = strlen(s->log);
    if (deleted)
        snprintf(s->log + n, sizeof s->log - n, "del %s;", key);
    else
        snprintf(s->log + n, sizeof s->log - n, "set %s=%.*s;", key, (int)len, value ? (const char *)value : "");
    s->calls++;
    pthread_mutex_unlock(&s->mu);
}

static void test_each_change_in_order(void **state)
{
    (void)state;
    seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dp_store_t *st = dp_store_new();
    assert_non_null(st);
    /* Entries loaded before the hook is set are not reported back. */
    assert_int_equal(dp_store_set_copy(st, "loaded", "x", 1), DP_OK);
    dp_store_set_hook(st, hook, &s);
    assert_int_equal(dp_store_set_copy(st, "a", "1", 1), DP_OK);
    assert_int_equal(dp_store_set_copy(st, "a", "22", 2), DP_OK);
    assert_int_equal(dp_store_delete(st, "loaded"), DP_OK);
    /* A delete of an absent key changes nothing: no call. */
    assert_int_equal(dp_store_delete(st, "absent"), DP_ENOTFOUND);
    /* An empty value is a set, not a delete. */
    assert_int_equal(dp_store_set(st, "empty", NULL, 0, NULL), DP_OK);
    /* A refused change: no call. */
    assert_int_equal(dp_store_set_copy(st, NULL, "x", 1), DP_EINVAL);
    assert_string_equal(s.log, "set a=1;set a=22;del loaded;set empty=;");
    assert_int_equal(s.calls, 4);
    /* Removed: no more calls. */
    dp_store_set_hook(st, NULL, NULL);
    assert_int_equal(dp_store_set_copy(st, "b", "3", 1), DP_OK);
    assert_int_equal(s.calls, 4);
    dp_store_free(st);
    assert_int_equal(s.calls, 4); /* freeing is no deletion */
}

/* The value the hook sees is the stored one (a copy's bytes). */
static void hook_check_stored(void *user, const char *key, const void *value, size_t len, bool deleted)
{
    (void)key;
    (void)deleted;
    dp_store_t *st = user;
    (void)st;
    assert_int_equal(len, 5);
    assert_memory_equal(value, "hello", 5);
    assert_int_equal(((const char *)value)[5], '\0');
}

static void test_value_as_stored(void **state)
{
    (void)state;
    dp_store_t *st = dp_store_new();
    char buf[] = "hello world";
    dp_store_set_hook(st, hook_check_stored, st);
    assert_int_equal(dp_store_set_copy(st, "k", buf, 5), DP_OK);
    memset(buf, 'x', sizeof buf - 1);
    dp_store_free(st);
}

static dp_outcome_t job_writes(dp_job_t *job, void *user)
{
    (void)user;
    dp_store_t *st = dp_job_store(job);
    char key[64];
    snprintf(key, sizeof key, "mine/%s", dp_job_name(job));
    dp_store_set_copy(st, key, "v", 1);
    return DP_READY;
}

/* Jobs on worker threads write through the run's store: every change
 * reaches the hook (and the pool's own snapshots too, under their prefix). */
static void test_run_writes_reach_hook(void **state)
{
    (void)state;
    seen_t *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    dp_store_t *st = dp_store_new();
    dp_store_set_hook(st, hook, s);
    dp_graph_t *g = dp_graph_new();
    for (int i = 0; i < 8; i++) {
        char name[8];
        snprintf(name, sizeof name, "j%d", i);
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        spec.name = name;
        spec.run = job_writes;
        assert_int_equal(dp_graph_add_job(g, &spec, NULL, 0), DP_OK);
    }
    dp_run_opts_t o;
    dp_run_opts_init(&o);
    o.store = st;
    o.max_concurrent_jobs = 4;
    dp_result_t *r = dp_graph_run(g, &o, NULL, 0);
    assert_non_null(r);
    assert_int_equal(dp_result_outcome(r), DP_RUN_SUCCESS);
    for (int i = 0; i < 8; i++) {
        char want[32];
        snprintf(want, sizeof want, "set mine/j%d=v;", i);
        assert_non_null(strstr(s->log, want));
        /* the snapshot of the running job was set, then deleted */
        snprintf(want, sizeof want, "del dp.running/j%d;", i);
        assert_non_null(strstr(s->log, want));
    }
    dp_result_free(r);
    dp_graph_free(g);
    dp_store_free(st);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_change_in_order),
        cmocka_unit_test(test_value_as_stored),
        cmocka_unit_test(test_run_writes_reach_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
