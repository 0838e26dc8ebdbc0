/* ptest.c - helpers for the plugin tests (see ptest.h). */
#include "ptest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

void ptest_log_init(ptest_log_t *log)
{
    memset(log, 0, sizeof(*log));
    pthread_mutex_init(&log->mu, NULL);
}

void ptest_log_free(ptest_log_t *log)
{
    free(log->buf);
    pthread_mutex_destroy(&log->mu);
}

void ptest_log_cb(void *user, const dp_log_record_t *rec)
{
    ptest_log_t *log = user;
    char line[4096];
    int n = snprintf(line, sizeof(line), "%s job=%s plugin=%s: %s\n", dp_log_level_name(rec->level),
                     rec->job ? rec->job : "-", rec->plugin ? rec->plugin : "-", rec->message);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    pthread_mutex_lock(&log->mu);
    if (log->len + len + 1 > log->cap) {
        size_t cap = (log->cap + len + 1) * 2;
        char *b = realloc(log->buf, cap);
        if (!b) {
            pthread_mutex_unlock(&log->mu);
            return;
        }
        log->buf = b;
        log->cap = cap;
    }
    memcpy(log->buf + log->len, line, len);
    log->len += len;
    log->buf[log->len] = '\0';
    pthread_mutex_unlock(&log->mu);
}

bool ptest_log_has(ptest_log_t *log, const char *needle)
{
    pthread_mutex_lock(&log->mu);
    bool has = log->buf && strstr(log->buf, needle);
    if (!has)
        fprintf(stderr, "log lacks \"%s\"; log:\n%s\n", needle, log->buf ? log->buf : "");
    pthread_mutex_unlock(&log->mu);
    return has;
}

dp_plugins_t *ptest_registry(ptest_log_t *log)
{
    dp_plugins_t *pl = dp_plugins_new();
    assert_non_null(pl);
    assert_int_equal(dp_plugins_add_path(pl, DP_PLUGINS_DIR), DP_OK);
    assert_int_equal(dp_plugins_add_path(pl, TP_DIR "/v1"), DP_OK);
    if (log)
        dp_plugins_set_log(pl, ptest_log_cb, log, DP_LOG_DEBUG);
    return pl;
}

dp_result_t *ptest_run1(dp_plugins_t *pl, const char *type, const dp_params_t *params, const dp_job_spec_t *base,
                        dp_store_t *store, ptest_log_t *log, dp_graph_t **g)
{
    *g = dp_graph_new();
    assert_non_null(*g);
    dp_job_spec_t spec;
    if (base)
        spec = *base;
    else
        dp_job_spec_init(&spec);
    if (!spec.name)
        spec.name = "J";
    char err[2048] = "";
    int rc = dp_plugins_add_job(pl, *g, &spec, type, params, err, sizeof(err));
    if (rc != DP_OK)
        fail_msg("dp_plugins_add_job(%s): %s", type, err);
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.store = store;
    if (log) {
        opts.log = ptest_log_cb;
        opts.log_user = log;
        opts.log_level = DP_LOG_DEBUG;
    }
    dp_result_t *r = dp_graph_run(*g, &opts, err, sizeof(err));
    if (!r)
        fail_msg("dp_graph_run: %s", err);
    return r;
}

uint64_t ptest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

char *ptest_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = NULL;
    assert_true(asprintf(&path, "%s/dp-ptest-XXXXXX", base && *base ? base : "/tmp") > 0);
    assert_non_null(mkdtemp(path));
    return path;
}

void ptest_copy(const char *src, const char *dst)
{
    char *cmd = NULL;
    assert_true(asprintf(&cmd, "cp '%s' '%s' && chmod 0755 '%s'", src, dst, dst) > 0);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

void ptest_rmrf(const char *dir)
{
    char *cmd = NULL;
    assert_true(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}
