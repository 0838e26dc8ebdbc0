/* hscommon.h - what the hot-swap test and the measurement share: a plugin
 * directory with hs.so, a registry and store, a reloader whose reports are
 * recorded, ways to replace the file, and runs of hs jobs. */
#ifndef DP_HSCOMMON_H
#define DP_HSCOMMON_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"
#include "ptest.h"

#define HS_MAX_EVENTS 4096

typedef struct hs_event {
    int status;
    char new_version[16];
    char error[512];
    unsigned in_flight;
    uint64_t complete_ns, swapped_ns;
} hs_event_t;

typedef struct hs_fix {
    char *dir;
    char path[PATH_MAX];
    ptest_log_t log;
    dp_plugins_t *pl;
    dp_store_t *store;
    dp_reloader_t *rl;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hs_event_t events[HS_MAX_EVENTS];
    size_t nevents;
    uint64_t renamed_ns; /* CLOCK_MONOTONIC just before the last rename(2) of hs_install_rename */
} hs_fix_t;

/* Sets up dir/hs.so (v1), loads it, and creates the reloader (not started). */
hs_fix_t *hs_fix_new(uint64_t settle_ms);
void hs_fix_free(hs_fix_t *f);

/* The variant's file: HS_DIR/<variant>/hs.so. */
const char *hs_variant(const char *variant);
/* A new file written beside and renamed over dir/hs.so. */
void hs_install_rename(hs_fix_t *f, const char *variant);
/* dir/hs.so truncated and rewritten in place, in `chunks` writes `pause_ms`
 * apart. */
void hs_overwrite(hs_fix_t *f, const char *variant, int chunks, unsigned pause_ms);
/* A plain file of garbage renamed over dir/hs.so. */
void hs_install_garbage(hs_fix_t *f);

/* Waits until at least n reload reports came; false after timeout_ms. */
bool hs_wait_events(hs_fix_t *f, size_t n, uint64_t timeout_ms);
size_t hs_nevents(hs_fix_t *f);
hs_event_t hs_event(hs_fix_t *f, size_t i);

/* A graph of jobs J0..J(n-1) of `type` (independent), params ms. */
dp_graph_t *hs_graph(hs_fix_t *f, size_t n, const char *type, uint64_t ms);
dp_result_t *hs_run(hs_fix_t *f, dp_graph_t *g, unsigned jobs);
/* The current version's string ("1"), into buf. */
const char *hs_current(hs_fix_t *f, char *buf, size_t len);
/* Number of versions loaded (current and draining). */
unsigned hs_nversions(hs_fix_t *f);

/* A thread running g again and again (4 workers) until stop, counting runs,
 * jobs, failed jobs (the first three printed) and jobs on version 1 and 2. */
typedef struct hs_runner {
    hs_fix_t *f;
    dp_graph_t *g;
    int stop; /* under f->mu */
    unsigned long runs, jobs, failed, on[3];
} hs_runner_t;
void *hs_runner_main(void *arg);

uint64_t hs_mono_ns(void);
/* Entries of /proc/self/maps: all (NULL), file-backed ("file": a path or a
 * plugin's private copy), or only plugin copies ("plugin"). */
unsigned hs_count_maps(const char *which);
unsigned hs_count_fds(void);

#endif
