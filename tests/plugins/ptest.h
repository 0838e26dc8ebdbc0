/* ptest.h - helpers for the plugin tests: a log that can be searched, a
 * registry with the test and first-party plugin directories, and a way to
 * run one plugin job. */
#ifndef DP_PTEST_H
#define DP_PTEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"

typedef struct ptest_log {
    pthread_mutex_t mu;
    char *buf;
    size_t len, cap;
} ptest_log_t;

void ptest_log_init(ptest_log_t *log);
void ptest_log_free(ptest_log_t *log);
/* A dp_log_cb: appends "LEVEL job=JOB plugin=PLUGIN: MESSAGE\n". */
void ptest_log_cb(void *user, const dp_log_record_t *rec);
bool ptest_log_has(ptest_log_t *log, const char *needle);

/* A registry searching the build's plugin dir (first-party) and TP_DIR/v1
 * (the test plugin "good"), logging at DEBUG into log (may be NULL). */
dp_plugins_t *ptest_registry(ptest_log_t *log);

/* Runs a one-job graph: job "J" of `type` with params (may be NULL) and
 * spec tweaks from `base` (may be NULL). Returns the result (the graph in
 * *g; free both). add_job failures fail the test. */
dp_result_t *ptest_run1(dp_plugins_t *pl, const char *type, const dp_params_t *params, const dp_job_spec_t *base,
                        dp_store_t *store, ptest_log_t *log, dp_graph_t **g);

uint64_t ptest_now_ms(void);

/* A fresh 0700 temp directory (the loader refuses group/other-writable
 * ones); returned path is malloc'd. */
char *ptest_tmpdir(void);
/* cp src dst (mode 0755). */
void ptest_copy(const char *src, const char *dst);
/* rm -rf dir. */
void ptest_rmrf(const char *dir);

#endif
