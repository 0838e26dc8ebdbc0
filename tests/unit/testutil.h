/* testutil.h - shared helpers for the cmocka unit tests (tests/unit/test_*.c).
 *
 * Besides the clock, the engine's tests share:
 *  - a scripted job: one callback whose behaviour per job name is configured
 *    with a short text ("error sleep=20 fail=2 retries=3"), and that counts
 *    calls, attempts and concurrency with atomics;
 *  - a graph builder from a compact edge spec ("A:;B:A;C:A;D:B,C;E:D");
 *  - result helpers that print statuses and id lists as text, so a test
 *    compares one string and a failure shows the whole picture;
 *  - thread-safe recorders for log records and events.
 */
#ifndef DP_TESTUTIL_H
#define DP_TESTUTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"

/* CLOCK_MONOTONIC in milliseconds, for generous timing bounds. */
uint64_t dp_test_now_ms(void);

/* ------------------------------------------------------------------------ */
/* Scripted jobs                                                             */
/* ------------------------------------------------------------------------ */

typedef enum tu_answer {
    TU_READY = 0,
    TU_NOT_READY,
    TU_ERROR,    /* retryable error "NAME failed (attempt N)" */
    TU_PERMANENT /* permanent error "NAME failed permanently" */
} tu_answer_t;

typedef struct tu_job tu_job_t;
typedef struct tu_script tu_script_t;

/* A hook called at the start of every run (and check) call; returning
 * anything but -1 ends the call with that outcome. */
typedef int (*tu_hook_fn)(dp_job_t *job, tu_job_t *tj, bool is_check, void *arg);

/* How one job behaves, and the settings its spec gets. Set with tu_set(). */
typedef struct tu_behave {
    tu_answer_t answer;  /* run's answer once it is through */
    unsigned sleep_ms;   /* sleep first, honouring the attempt context:
                              * if it ends early the run fails "interrupted" */
    bool block;          /* wait until the context is done (cap 10 s) */
    unsigned deaf_ms;    /* sleep ignoring the context (plain nanosleep),
                              * then answer anyway: a job that returns late */
    unsigned fail_first; /* the first N attempts fail (retryable) */
    unsigned rendezvous; /* wait (max 2 s) until this many jobs have run
                              * at once (max_running >= N): the first wave
                              * meets, later jobs pass straight through */
    bool check_only;     /* no run callback */
    bool has_check;      /* a check callback */
    tu_answer_t check_answer;
    unsigned check_ready_after; /* check: not ready for the first N-1 calls */
    unsigned check_sleep_ms;    /* check sleeps honouring its context */
    unsigned check_deaf_ms;     /* check sleeps ignoring its context */
    /* spec settings */
    uint64_t timeout_ms;
    unsigned retries;
    dp_backoff_t backoff;
    dp_readiness_t readiness;
    const char *plugin;
    tu_hook_fn hook;
    void *hook_arg;
    /* trigger rules (appended) */
    dp_run_if_t run_if;
    bool continue_on_failure;
    uint64_t cleanup_timeout_ms;
} tu_behave_t;

/* A job's counters (all atomics: written by workers, read by the test). */
struct tu_job {
    char name[64];
    tu_behave_t b;
    tu_script_t *script;
    atomic_uint runs;                  /* run callback calls */
    atomic_uint checks;                /* check callback calls */
    atomic_uint attempt_ends;          /* attempt_end callback calls */
    atomic_uint start_seq;             /* script-wide sequence number of the last start */
    atomic_uint end_seq;               /* ... of the last return */
    atomic_bool saw_cancel;            /* found its context done at some point */
    atomic_uint_least64_t deadline_ns; /* dp_ctx_deadline_ns of the last attempt */
};

#define TU_MAX_JOBS 256

struct tu_script {
    tu_job_t jobs[TU_MAX_JOBS];
    size_t njobs;
    tu_behave_t defaults;   /* for jobs not named in tu_set() */
    atomic_int running;     /* callbacks in progress right now */
    atomic_int max_running; /* the most ever seen at once */
    atomic_uint seq;        /* start/end sequence */
    atomic_uint total_runs;
};

tu_script_t *tu_script_new(void);
void tu_script_free(tu_script_t *s);

/* Configures the jobs named in `names` (comma-separated, "*" for the
 * defaults) with words separated by spaces:
 *   ready | not_ready | error | permanent        run's answer
 *   sleep=MS | block (block=0 undoes it) | deaf=MS | fail=N | rendezvous=N
 *   check=ready|not_ready|error | check_after=N  (ready on the Nth call)
 *   check_sleep=MS | check_deaf=MS | check_only
 *   timeout=MS | retries=N | backoff=INIT[/FACTOR[/MAX[/JITTER]]]
 *   period=MS | probe_timeout=MS | rtimeout=MS   (readiness)
 *   run_if=all_success|all_done|any_failed | continue_on_failure[=0|1]
 *   cleanup_timeout=MS                           (trigger rules)
 * Words not given keep their current value. Aborts the test on a typo. */
void tu_set(tu_script_t *s, const char *names, const char *words);
/* The job's record (created with the defaults if new). */
tu_job_t *tu_job(tu_script_t *s, const char *name);
/* Sets a hook on jobs `names` (comma-separated). */
void tu_hook(tu_script_t *s, const char *names, tu_hook_fn fn, void *arg);

/* Builds a graph from "A:;B:A;C:A;D:B,C;E:D" (';' between jobs, ':' before
 * the comma-separated dependencies; "A" alone is a root; spaces ignored),
 * every job scripted by s. Asserts on failure to add; does not validate. */
dp_graph_t *tu_graph(const char *spec, tu_script_t *s);

/* A spec of n independent jobs named J00..J(n-1), in a malloc'd string. */
char *tu_spec_flat(unsigned n);
/* A layered spec: `layers` layers of `width` jobs L<l>_<i>, each job
 * depending on two jobs of the layer before. malloc'd. */
char *tu_spec_layers(unsigned layers, unsigned width);

/* Runs g with opts (NULL: defaults), asserting a result came back. */
dp_result_t *tu_run(dp_graph_t *g, const dp_run_opts_t *opts);

/* ------------------------------------------------------------------------ */
/* Looking at results                                                        */
/* ------------------------------------------------------------------------ */

/* "A=success B=skipped ..." for every job, in id (name) order. Static buffer. */
const char *tu_statuses(const dp_result_t *r);
/* Asserts that the jobs listed in `expect` ("A=success B=unknown", any
 * subset, any order) have those statuses; prints every status on failure. */
void tu_expect(const dp_result_t *r, const char *expect);
/* Status of a job by name (asserts it exists). */
dp_status_t tu_status(const dp_result_t *r, const char *name);
/* Job result by name (asserts it exists). */
const dp_job_result_t *tu_jr(const dp_result_t *r, const char *name);
/* An id list as "A,B,C" (names via the graph) into buf. */
const char *tu_ids(const dp_graph_t *g, const dp_id_list_t *l, char *buf, size_t len);
/* The frontiers as "C:not_ready[]{C,D,E} G:failed[]{G,H}" ([] blocked_by,
 * {} subtree). Static buffer. */
const char *tu_frontiers(const dp_result_t *r);
/* The boundary as "A,B". Static buffer. */
const char *tu_boundary(const dp_result_t *r);
/* Asserts every job that started did so after each of its dependencies
 * returned (by the script's sequence numbers). */
void tu_expect_dep_order(const dp_graph_t *g, tu_script_t *s);

/* ------------------------------------------------------------------------ */
/* Recorders                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct tu_log_entry {
    dp_log_level_t level;
    char job[64];
    unsigned attempt;
    char message[256];
} tu_log_entry_t;

typedef struct tu_log {
    pthread_mutex_t mu;
    tu_log_entry_t *v;
    size_t n, cap;
} tu_log_t;

void tu_log_init(tu_log_t *l);
void tu_log_destroy(tu_log_t *l);
/* A dp_log_cb; user is a tu_log_t. */
void tu_log_cb(void *user, const dp_log_record_t *rec);
/* How many records for job (NULL: run-level) whose message contains
 * `needle` (NULL: any), with this attempt (0: any). */
size_t tu_log_count(tu_log_t *l, const char *job, unsigned attempt, const char *needle);

typedef struct tu_event {
    dp_event_kind_t kind;
    char name[64];
    unsigned attempt;
    dp_status_t status;
    char error[128];
    uint64_t time_ns;
    int64_t start_ns;
} tu_event_t;

typedef struct tu_events {
    pthread_mutex_t mu;
    tu_event_t *v;
    size_t n, cap;
} tu_events_t;

void tu_events_init(tu_events_t *e);
void tu_events_destroy(tu_events_t *e);
/* A dp_event_cb; user is a tu_events_t. */
void tu_event_cb(void *user, const dp_event_t *ev);
/* The events of one job as "start1 end1:failed start2 end2:success
 * job:success" (skipped: "skipped", reused: "reused"). Static buffer. */
const char *tu_events_of(tu_events_t *e, const char *name);

#endif
