/*
 * daggerpool.h - the embedder's API of libdaggerpool.
 *
 * A workflow is a DAG of jobs run on a bounded worker pool with a global
 * timeout, per-job timeouts, retries with backoff and readiness checks. The
 * result says, per job, how it ended, and where the workflow stopped and why
 * (frontiers, boundary subtrees).
 *
 * Everything here works in-process with plain C callbacks: no plugin and no
 * file is needed. Plugins (<daggerpool/plugin.h>) and workflow files are
 * layers on top (see the "plugins" and "workflow" sections below).
 *
 * Conventions
 *  - Functions returning int return 0 (DP_OK) on success and a negative
 *    dp_err_t on failure; a failed call changes nothing.
 *  - Where a function takes `char *err, size_t errlen`, a human-readable
 *    message is written there on failure (always NUL-terminated; may be NULL).
 *  - Strings passed in are copied unless stated otherwise.
 *  - Thread-safety is stated per function; "any thread" means callable
 *    concurrently with a run.
 */
#ifndef DAGGERPOOL_H
#define DAGGERPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DP_BUILDING_LIBRARY)
#define DP_API __attribute__((visibility("default")))
#else
#define DP_API
#endif

#define DP_VERSION_MAJOR 1
#define DP_VERSION_MINOR 1
#define DP_VERSION_PATCH 0
#define DP_VERSION_STRING "1.1.0"

/** The library's version string, e.g. "1.0.0". */
DP_API const char *dp_version(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* Every error code, one row each: XX(NAME, value, message). The list makes
 * dp_err_t (DP_NAME = value), dp_strerror() (the message) and dp_err_name()
 * ("DP_NAME"), so a new code is one new row (libuv's UV_ERRNO_MAP). Never
 * renumbered; a retired code keeps its number. An embedder may expand it
 * too, e.g. to map the codes to its own. */
/* A table, aligned by hand: */
/* clang-format off */
#define DP_ERR_MAP(XX)                                                                       \
    XX(OK, 0, "success")                                                                     \
    XX(EINVAL, -1, "invalid argument")                                                       \
    XX(ENOMEM, -2, "out of memory")                                                          \
    XX(EDUPLICATE, -3, "duplicate job name")                                                 \
    XX(EUNKNOWN_DEP, -4, "unknown dependency")      /* a dependency names no job */          \
    XX(ESELF_DEP, -5, "job depends on itself")                                               \
    XX(ECYCLE, -6, "dependency cycle")                                                       \
    XX(ECONCURRENCY, -7, "max_concurrent_jobs must be at least 1")                           \
    XX(ENOTFOUND, -8, "not found")                  /* no such job / key / plugin / type */  \
    XX(ECANCELED, -9, "cancelled")                                                           \
    XX(ETIMEDOUT, -10, "timed out")                 /* a deadline passed */                  \
    XX(ESYS, -11, "system call failed")             /* see errno / the message */            \
    XX(EPLUGIN, -12, "plugin refused or failed")                                             \
    XX(ECONFIG, -13, "invalid workflow file")                                                \
    XX(EBUSY, -14, "busy")                          /* in use, e.g. the graph is running */  \
    XX(ETYPE, -15, "wrong type")                    /* a value has another type */           \
    XX(ENOJOB, -16, "job has neither run nor check")
/* clang-format on */

typedef enum dp_err {
#define DP__ERR_ENUM(name, value, message) DP_##name = value,
    DP_ERR_MAP(DP__ERR_ENUM)
#undef DP__ERR_ENUM
} dp_err_t;

/** A short description of an error code ("dependency cycle"); never NULL:
 *  "unknown error" for a value that is no code. Any thread. */
DP_API const char *dp_strerror(int err);
/** The name of an error code's constant ("DP_ECYCLE"), for logs and
 *  messages meant for programmers; never NULL: "?" for a value that is no
 *  code. Any thread. */
DP_API const char *dp_err_name(int err);

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum dp_log_level { DP_LOG_ERROR = 0, DP_LOG_WARN = 1, DP_LOG_INFO = 2, DP_LOG_DEBUG = 3 } dp_log_level_t;

/* One log record. Pointers are valid only during the callback. */
typedef struct dp_log_record {
    dp_log_level_t level;
    const char *job;    /* job name, or NULL for run-level messages */
    unsigned attempt;   /* 1-based attempt, 0 when not in an attempt */
    const char *plugin; /* plugin name, or NULL */
    const char *message;
    uint64_t time_ns; /* CLOCK_REALTIME */
} dp_log_record_t;

/* Called from any worker thread, possibly concurrently: must be thread-safe. */
typedef void (*dp_log_cb)(void *user, const dp_log_record_t *rec);

DP_API const char *dp_log_level_name(dp_log_level_t level);

/* ------------------------------------------------------------------------ */
/* Cancellation context                                                      */
/* ------------------------------------------------------------------------ */

/*
 * A context carries a cancel flag and an optional deadline. A child never
 * outlives its parent: it is done when it or any ancestor is cancelled or
 * past its deadline. A child's deadline is the earlier of its own and its
 * parent's.
 */
typedef struct dp_ctx dp_ctx_t;

/** New context under `parent` (may be NULL), done after `timeout_ms`
 *  milliseconds (0: no deadline of its own). NULL on failure. The parent
 *  must outlive the child. */
DP_API dp_ctx_t *dp_ctx_new(dp_ctx_t *parent, uint64_t timeout_ms);
/** Frees a context; its children must have been freed first. */
DP_API void dp_ctx_free(dp_ctx_t *ctx);
/** Cancels ctx and all its descendants. Any thread; idempotent. */
DP_API void dp_ctx_cancel(dp_ctx_t *ctx);
/** Cancels ctx from a signal handler (async-signal-safe: an atomic store and
 *  a write(2)). Waits on ctx and its descendants wake up; runs using ctx see
 *  the cancellation promptly. */
DP_API void dp_ctx_cancel_from_signal(dp_ctx_t *ctx);
/** 0 while live; DP_ECANCELED or DP_ETIMEDOUT once done. Any thread. */
DP_API int dp_ctx_err(const dp_ctx_t *ctx);
/** True once dp_ctx_err() != 0. */
DP_API bool dp_ctx_done(const dp_ctx_t *ctx);
/** Milliseconds until the effective deadline (0 if passed), or -1 if none. */
DP_API int64_t dp_ctx_remaining_ms(const dp_ctx_t *ctx);
/** Effective deadline on CLOCK_MONOTONIC in ns, or 0 if none. */
DP_API uint64_t dp_ctx_deadline_ns(const dp_ctx_t *ctx);
/** Sleeps up to ms; returns 0 after the full sleep, or dp_ctx_err() as soon
 *  as ctx is done (at once if it already is). */
DP_API int dp_ctx_sleep(dp_ctx_t *ctx, uint64_t ms);
/** A file descriptor that becomes readable when ctx is done (cancelled or
 *  deadline passed). Owned by ctx: do not read or close it. -1 on failure. */
DP_API int dp_ctx_fd(dp_ctx_t *ctx);

/* ------------------------------------------------------------------------ */
/* Store                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * A thread-safe key/value store for auxiliary state (snapshots, ids kept
 * across runs). Not a data path between jobs and not the source of truth
 * for orchestration.
 */
typedef struct dp_store dp_store_t;
typedef void (*dp_free_cb)(void *ptr);

DP_API dp_store_t *dp_store_new(void);
/** Frees the store, calling every value's free function. */
DP_API void dp_store_free(dp_store_t *store);
/** Sets key to (value, len), replacing (and freeing) any old value. The store
 *  owns `value` from now on and releases it with free_fn (NULL: not freed).
 *  On failure free_fn is NOT called: the caller keeps ownership. */
DP_API int dp_store_set(dp_store_t *store, const char *key, void *value, size_t len, dp_free_cb free_fn);
/** Copies `len` bytes of data into a store-owned value (a NUL is appended
 *  so strings read back as strings). */
DP_API int dp_store_set_copy(dp_store_t *store, const char *key, const void *data, size_t len);
/** Copies the value of key into a new malloc'd buffer (NUL-terminated, len
 *  excludes it) that the caller frees. DP_ENOTFOUND if absent. */
DP_API int dp_store_get_copy(dp_store_t *store, const char *key, void **out, size_t *len);
/** Calls fn(value, len, arg) with the value of key while the store holds its
 *  lock (fn must not call back into the store). DP_ENOTFOUND if absent. */
DP_API int dp_store_with(dp_store_t *store, const char *key, void (*fn)(const void *value, size_t len, void *arg),
                         void *arg);
/** Removes key (freeing its value). DP_ENOTFOUND if absent. */
DP_API int dp_store_delete(dp_store_t *store, const char *key);
/** Number of keys. */
DP_API size_t dp_store_count(dp_store_t *store);
/** Calls fn for each entry in key order under the store's lock; stops early
 *  when fn returns non-zero (and returns that value). */
DP_API int dp_store_foreach(dp_store_t *store, int (*fn)(const char *key, const void *value, size_t len, void *arg),
                            void *arg);

/* Persistence: a hook the store calls on every change, so that an embedder
 * can write the entries through to durable storage (the daggerpool command
 * keeps them in its SQLite state, docs/state.md; the library itself stores
 * nothing on disk). Load the saved entries with dp_store_set_copy first,
 * then set the hook: it sees only the changes made after. */

/** Whether this header has dp_store_set_hook. */
#define DP_HAVE_STORE_HOOK 1

/* Called after key was set (deleted false; value, len: the new value, as
 * stored) or deleted (deleted true; value NULL, len 0), on the thread that made the change, with the
 * store's lock held: the calls for one store come one at a time, in the
 * order the changes were made, and a change is not visible to other threads
 * before its call has returned. So the hook must not call back into the
 * store, and what it does delays every other user of the store. */
typedef void (*dp_store_hook_cb)(void *user, const char *key, const void *value, size_t len, bool deleted);

/** Sets (or, with hook NULL, removes) the store's hook. Not while other
 *  threads change the store. */
DP_API void dp_store_set_hook(dp_store_t *store, dp_store_hook_cb hook, void *user);

/* ------------------------------------------------------------------------ */
/* Jobs                                                                      */
/* ------------------------------------------------------------------------ */

/* What a job callback reports. */
typedef enum dp_outcome {
    DP_READY = 0,     /* reached the desired state */
    DP_NOT_READY = 1, /* not yet: the workflow cannot continue past it */
    DP_ERROR = 2      /* failed; message via dp_job_fail() */
} dp_outcome_t;

/* The running job, handed to callbacks; valid only during the call. */
typedef struct dp_job dp_job_t;

/* run and check have this shape. Called on a worker thread. */
typedef dp_outcome_t (*dp_job_cb)(dp_job_t *job, void *user);
/* Called once when an attempt has ended, whatever its outcome. */
typedef void (*dp_job_end_cb)(dp_job_t *job, void *user);

/** Job name. */
DP_API const char *dp_job_name(const dp_job_t *job);
/** 1-based attempt number. */
DP_API unsigned dp_job_attempt(const dp_job_t *job);
/** The attempt's context: done on run cancellation, global or job timeout. */
DP_API dp_ctx_t *dp_job_ctx(dp_job_t *job);
/** The run's store (NULL if the run has none). */
DP_API dp_store_t *dp_job_store(dp_job_t *job);
/** Records the error message for this attempt (printf-style) and returns
 *  DP_ERROR, so `return dp_job_fail(job, false, "...")` reads naturally.
 *  permanent=true: not retried. */
DP_API dp_outcome_t dp_job_fail(dp_job_t *job, bool permanent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Logs with the job's name and attempt attached. */
DP_API void dp_job_log(dp_job_t *job, dp_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Records which plugin version this job ran on (shown in the result). The
 *  string is NOT copied: it must live as long as the result. */
DP_API void dp_job_set_version(dp_job_t *job, const char *version);
/** Whether this header has dp_job_retry_after, dp_readiness_ext_t,
 *  dp_job_spec_t's readiness_ext and deadline_ms, dp_result_job_waits and
 *  dp_poll_ext (added in 1.2). */
#define DP_HAVE_JOB_WAITS 1
/** The job suggests how long to wait before it is tried again (Temporal's
 *  next_retry_delay, Dagster's RetryRequested): the suggestion of the last
 *  run or check call is used instead of the backoff when the attempt fails
 *  and is retried, instead of the period before the next probe when a
 *  readiness poll goes on, and as the run's requeue hint
 *  (dp_result_requeue_after_ms) when the job ends not ready or failed
 *  (not for a permanent failure). Each run or check call starts without
 *  one; a later call in the same callback replaces an earlier one; one made
 *  in attempt_end is ignored. The job's deadline still holds: a retry that
 *  would start after it is not made. */
DP_API void dp_job_retry_after(dp_job_t *job, uint64_t ms);

/* Retry backoff: delay(n) = min(initial * factor^(n-1), max), then reduced by
 * a random fraction up to `jitter` (0..1) so that retries spread out. */
typedef struct dp_backoff {
    uint64_t initial_ms; /* default 1000 */
    double factor;       /* default 2.0 */
    uint64_t max_ms;     /* default 30000 */
    double jitter;       /* default 0.0 */
} dp_backoff_t;

/* Readiness: after run (or alone, if no run), check decides. period 0: one
 * probe. Otherwise poll: probe at once, then every period until ready, an
 * error, or the readiness timeout (then the job ends not_ready). */
typedef struct dp_readiness {
    uint64_t period_ms;        /* 0: probe once */
    uint64_t probe_timeout_ms; /* one check; default 30000 */
    uint64_t timeout_ms;       /* whole poll; 0: bounded only by the job/run */
} dp_readiness_t;

/* Readiness like Kubernetes probes (1.2; dp_job_spec_t.readiness_ext, since
 * dp_readiness_t cannot grow). Zero everywhere is the behaviour before them.
 * Thresholds count consecutive probes: a ready probe adds to the successes
 * and clears the failures, a failed one (DP_ERROR, or a probe that timed
 * out) adds to the failures and clears the successes, a not-ready one clears
 * both. The wait ends ready at success_threshold successes, failed (the
 * attempt's error, retried like any) at failure_threshold failures, not
 * ready at the readiness timeout (which counts from the end of run,
 * initial_delay included). The wait after the n-th probe is
 * min(period * backoff^(n-1), max_period). Thresholds above 1, backoff and
 * max_period need a period; with period 0 and an initial_delay, one probe
 * after the delay decides. */
typedef struct dp_readiness_ext {
    uint64_t initial_delay_ms;  /* before the first probe; 0: probe at once */
    unsigned success_threshold; /* 0 or 1: the first ready probe ends the wait */
    unsigned failure_threshold; /* 0 or 1: the first failed probe ends it */
    double backoff;             /* >= 1: the period grows by it; 0 or 1: fixed */
    uint64_t max_period_ms;     /* cap of the grown period (>= period); 0: none */
} dp_readiness_ext_t;

/* Where a plugin job's code (create, run, check, destroy) runs. Plain
 * callbacks always run in the host's process. See docs/isolation.md. */
typedef enum dp_isolation {
    /* On a worker thread of the host (the default, and the fastest).
     * Cancellation and deadlines are cooperative; a plugin that crashes or
     * calls exit() takes the host down with it. */
    DP_ISOLATION_NONE = 0,
    /* In a child process per attempt, started from the helper executable
     * daggerpool-job-runner (never a fork of the host). A crash, exit() or
     * hang fails the job with its cause ("plugin 'x' crashed with SIGSEGV in
     * job 'y'") and nothing else; timeouts and cancellation are enforced by
     * killing the child (SIGTERM after a grace period, then SIGKILL). */
    DP_ISOLATION_PROCESS = 1
} dp_isolation_t;

/* Resource limits of an isolated job's child process (setrlimit); 0 means
 * no limit. Only with DP_ISOLATION_PROCESS. */
typedef struct dp_limits {
    uint64_t cpu_ms;       /* RLIMIT_CPU (whole seconds, rounded up) */
    uint64_t memory_bytes; /* RLIMIT_AS: address space */
    uint64_t open_files;   /* RLIMIT_NOFILE */
} dp_limits_t;

/* When a job may start, from how its dependencies ended (README.md,
 * "Trigger rules and final jobs"). Whatever the rule, a job starts only
 * once every dependency has ended. */
typedef enum dp_run_if {
    /* Every dependency success (or failed with continue_on_failure): the
     * default, the seed's rule. Otherwise the job ends skipped. */
    DP_RUN_IF_ALL_SUCCESS = 0,
    /* Every dependency ended, whatever its status (cleanup, notify). Also
     * runs after fail-fast, a timeout or a cancellation cut the run, within
     * its cleanup_timeout. */
    DP_RUN_IF_ALL_DONE = 1,
    /* A handler: runs when a dependency failed (also after fail-fast cut the
     * run, like all_done); when none did, it ends skipped, "no dependency
     * failed", which holds nothing back (README.md, the semantics table). */
    DP_RUN_IF_ANY_FAILED = 2
} dp_run_if_t;

/** Whether this header has dp_run_if_t and the spec's run_if,
 *  continue_on_failure and cleanup_timeout_ms. */
#define DP_HAVE_RUN_IF 1

/** "all_success", "all_done", "any_failed"; "?" for another value. */
DP_API const char *dp_run_if_name(dp_run_if_t rule);

/** A final job's grace when it runs after the run was cut, when its spec
 *  says 0. */
#define DP_CLEANUP_TIMEOUT_DEFAULT_MS 30000u

/* One job of a graph. Initialise with dp_job_spec_init() so new fields get
 * their defaults. */
typedef struct dp_job_spec {
    const char *name;     /* unique, required */
    dp_job_cb run;        /* may be NULL if check is set (check-only) */
    dp_job_cb check;      /* optional readiness check */
    void *user;           /* passed to run/check */
    dp_free_cb user_free; /* called on user when the graph is freed */
    uint64_t timeout_ms;  /* one attempt (run + readiness); 0: none */
    unsigned retries;     /* extra attempts after the first */
    dp_backoff_t backoff;
    dp_readiness_t readiness;
    const char *plugin; /* label for results, e.g. "core"; may be NULL */
    /* Optional: called after each attempt that called run or check, once
     * that attempt is over (after its last check; also when it failed, timed
     * out or was cancelled), on a worker thread: usually the one that ran
     * the attempt's last call, but a readiness poll parks between probes and
     * its probes and attempt_end may run on another worker. run, check and
     * attempt_end of one job are never called concurrently (each call
     * happens-after the previous one), and no thread-local state carries
     * from one call to the next. The plugin
     * loader uses it to destroy the attempt's instance and unpin the plugin
     * version it ran on. */
    dp_job_end_cb attempt_end;
    /* Plugin jobs only (read by dp_plugins_add_job; a graph ignores them
     * for plain callbacks). Default: DP_ISOLATION_NONE, no limits. Limits
     * without DP_ISOLATION_PROCESS are refused (DP_EINVAL). */
    dp_isolation_t isolation;
    dp_limits_t limits;
    /* Appended after 1.0 go below this line (read only from a caller whose
     * struct has them: see "Binary compatibility" below). */
    /* 1.2: thresholds, initial delay and a growing period for readiness
     * (see dp_readiness_ext_t); zero: as before. */
    dp_readiness_ext_t readiness_ext;
    /* 1.2: all attempts and backoffs together, from the start of the first
     * attempt (beside timeout_ms, which bounds one). An attempt still
     * running then fails ("deadline of 10m passed"), and a retry whose
     * backoff would end at or after it is not made. 0: none. */
    uint64_t deadline_ms;
    /* Scheduling (DP_HAVE_SCHEDULING): the pool of the graph
     * (dp_graph_add_pool) whose slots the job takes from its start to its
     * end (its readiness waits and retries included); NULL: none. A job
     * starts only when its pool has pool_slots free (default 1), and a job
     * waiting for its pool holds no worker. */
    const char *pool;
    unsigned pool_slots;
    /* Among ready jobs, a higher priority goes first (default 0); among
     * equal priorities, the job with the longest remaining path (its
     * critical path: jobs, or expected durations, dp_graph_set_expected_ms). */
    int priority;
    /* Trigger rules (appended after 1.0). run_if: when the job may start (dp_run_if_t;
     * default DP_RUN_IF_ALL_SUCCESS). A graph refuses DP_RUN_IF_ANY_FAILED on
     * a job without dependencies (DP_EINVAL at validate). */
    dp_run_if_t run_if;
    /* Its failure (after its retries) fails neither the run nor fail-fast:
     * its successors run as if it had succeeded; its status stays failed,
     * with its error. Default false. */
    bool continue_on_failure;
    /* A final job (run_if all_done or any_failed) that runs after fail-fast,
     * the global timeout or a cancellation cut the run gets this long, from
     * its start, for all its attempts; past it the job fails with
     * "cleanup_timeout (30s) passed". 0: DP_CLEANUP_TIMEOUT_DEFAULT_MS. */
    uint64_t cleanup_timeout_ms;
} dp_job_spec_t;

DP_API void dp_job_spec_init(dp_job_spec_t *spec);
/** dp_job_spec_init for a struct of `size` bytes (what the caller's header
 *  says): fields beyond it are not touched. */
DP_API void dp_job_spec_init_sized(dp_job_spec_t *spec, size_t size);

/* ------------------------------------------------------------------------ */
/* Graph                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct dp_graph dp_graph_t;

DP_API dp_graph_t *dp_graph_new(void);
/** Frees the graph and calls each job's user_free. Not while running. */
DP_API void dp_graph_free(dp_graph_t *g);
/** Adds a job (spec is copied). DP_EDUPLICATE on a name already present. */
DP_API int dp_graph_add_job(dp_graph_t *g, const dp_job_spec_t *spec, char *err, size_t errlen);
/** Records that `job` depends on `dep`. Names are resolved by
 *  dp_graph_validate(), so jobs may be added in any order. */
DP_API int dp_graph_add_dep(dp_graph_t *g, const char *job, const char *dep);
/** Resolves names to ids and checks the graph: DP_EUNKNOWN_DEP,
 *  DP_ESELF_DEP, DP_ECYCLE (message "cycle: a -> b -> a"), DP_ENOJOB.
 *  Runs once; later calls return the first answer. */
DP_API int dp_graph_validate(dp_graph_t *g, char *err, size_t errlen);
/** Number of jobs. */
DP_API size_t dp_graph_job_count(const dp_graph_t *g);
/** Job ids are 0..count-1: after validate, in name order (validate sorts
 *  the jobs), unless the graph was built through ids (below); then in the
 *  order added, before and after validate. */
DP_API const char *dp_graph_job_name(const dp_graph_t *g, size_t id);
/** Id of a job by name, or -1. After validate. */
DP_API long dp_graph_job_id(const dp_graph_t *g, const char *name);
/** Direct dependencies of job id (sorted ids). After validate. */
DP_API size_t dp_graph_deps(const dp_graph_t *g, size_t id, const uint32_t **ids);
/** Direct successors of job id (sorted ids). After validate. */
DP_API size_t dp_graph_succs(const dp_graph_t *g, size_t id, const uint32_t **ids);
/** The plugin label of job id (may be NULL). */
DP_API const char *dp_graph_job_plugin(const dp_graph_t *g, size_t id);
/** Job id's trigger rule (DP_RUN_IF_ALL_SUCCESS when id is out of range). */
DP_API dp_run_if_t dp_graph_job_run_if(const dp_graph_t *g, size_t id);
/** Job id's continue_on_failure (false when id is out of range). */
DP_API bool dp_graph_job_continue_on_failure(const dp_graph_t *g, size_t id);

/* Building through ids: for a caller that has its own numbering (a
 * benchmark, a controller with its resources in an array), no name is
 * formatted, looked up, sorted or resolved.
 *
 * The rule: once dp_graph_add_job_id or dp_graph_add_dep_ids has been
 * called on a graph, its job ids never change. A job's id is the one
 * dp_graph_add_job_id handed out: its position in the order jobs were added
 * (jobs added before by name keep the positions they had then). Validate
 * keeps that order, so every id the caller holds stays valid after it and
 * after later additions, and a result's job ids (dp_result_job,
 * dp_result_status, frontiers, blockers...) are the same ids. Names stay
 * unique and are still what files and printed results show; lookups by
 * name (dp_graph_job_id, dp_result_find) still work. A graph never built
 * through ids numbers its jobs in name order at validate, as before. */

/** Whether this header has the functions below (and dp_result_status). */
#define DP_HAVE_GRAPH_IDS 1

/** A graph with room for `jobs` jobs and `deps` dependencies, so that a
 *  graph built in one go grows no array (0: unknown; it grows as needed).
 *  NULL when out of memory. */
DP_API dp_graph_t *dp_graph_new_hint(size_t jobs, size_t deps);
/** Adds a job like dp_graph_add_job and writes its id to *id. spec->name
 *  may be NULL: the job is then named "#ID" ("#0", "#1", ...), a name that
 *  clashes (DP_EDUPLICATE) with a job you named so yourself. Fixes the
 *  graph's ids (see above). */
DP_API int dp_graph_add_job_id(dp_graph_t *g, const dp_job_spec_t *spec, uint32_t *id, char *err, size_t errlen);
/** Records that job `job` depends on job `dep`, both ids (as handed out by
 *  dp_graph_add_job_id, or dp_graph_job_id's answer now). DP_ENOTFOUND for
 *  an id out of range, DP_ESELF_DEP when they are equal, DP_EBUSY while
 *  the graph runs; repeats are harmless. Fixes the graph's ids. */
DP_API int dp_graph_add_dep_ids(dp_graph_t *g, uint32_t job, uint32_t dep);

/** dp_graph_add_job and dp_graph_add_job_id for a spec of `size` bytes:
 *  fields beyond it take their defaults. */
DP_API int dp_graph_add_job_sized(dp_graph_t *g, const dp_job_spec_t *spec, size_t size, char *err, size_t errlen);
DP_API int dp_graph_add_job_id_sized(dp_graph_t *g, const dp_job_spec_t *spec, size_t size, uint32_t *id, char *err,
                                     size_t errlen);

/* ------------------------------------------------------------------------ */
/* Scheduling: pools and priorities                                          */
/* ------------------------------------------------------------------------ */

/* Pools (Airflow pools, ninja pools, Argo semaphores): a named count of
 * slots; a job of a pool (dp_job_spec_t.pool) takes pool_slots of them
 * while it is in flight, and starts only when they are free, besides
 * max_concurrent_jobs. Jobs waiting for their pool hold no worker; the one
 * of the highest priority waiting for a pool gets its slots first (a job
 * asking for more slots than are free is not passed by the pool's other
 * jobs).
 *
 * Order among ready jobs: a higher dp_job_spec_t.priority first; among
 * equal priorities, the longest remaining path first (the job's critical
 * path down to the end of the graph, in jobs, computed by validate; in
 * expected milliseconds once dp_graph_set_expected_ms gave durations). In
 * a graph with a pool or a priority other than 0, every ready job waiting
 * for a worker is taken in that order. In other graphs (the plain case,
 * whose scheduling takes no lock) the order decides where jobs are pushed
 * and which runs next on a worker: the roots start longest path first, and
 * a worker that ends a job goes on with its ready successor of the longest
 * path; jobs waiting in the queue for an idle worker are taken in the
 * order they became ready. */

/** Whether this header has pools, priorities and expected durations. */
#define DP_HAVE_SCHEDULING 1

/** Adds pool `name` of `slots` slots (>= 1) to g. DP_EDUPLICATE for a name
 *  already there, DP_EINVAL for 0 slots or an empty name, DP_EBUSY while
 *  running. Pools may be added before or after the jobs that name them;
 *  validate refuses a job naming an unknown pool (DP_ENOTFOUND) or asking
 *  for more slots than its pool has (DP_EINVAL). */
DP_API int dp_graph_add_pool(dp_graph_t *g, const char *name, unsigned slots, char *err, size_t errlen);
/** Number of pools; pool i's name (NULL past the end) and, if slots is not
 *  NULL, its slots. Pools are in the order added. */
DP_API size_t dp_graph_pool_count(const dp_graph_t *g);
DP_API const char *dp_graph_pool_name(const dp_graph_t *g, size_t i, unsigned *slots);
/** Job id's pool (NULL: none) and, if slots is not NULL, the slots it
 *  takes. */
DP_API const char *dp_graph_job_pool(const dp_graph_t *g, size_t id, unsigned *slots);
/** Job id's priority (dp_job_spec_t.priority; 0 by default). */
DP_API int dp_graph_job_priority(const dp_graph_t *g, size_t id);
/** After validate: job id's remaining path, the job included (its
 *  critical path): in jobs, or in expected milliseconds when durations were
 *  given. 0 for an id out of range or a graph not validated. The first call
 *  after validate (before any run) or after dp_graph_set_expected_ms makes
 *  the paths: not concurrently with a run of g or another call on it. */
DP_API uint64_t dp_graph_job_critical_path(const dp_graph_t *g, size_t id);
/** After validate: the expected duration of job id in ms (e.g. what it
 *  took last time), for the critical path: once any job has one, paths
 *  count milliseconds, and a job without one counts as the mean of those
 *  given. The next run uses them (it recomputes the paths once). Dropped
 *  when the graph changes. DP_ENOTFOUND for an id out of range, DP_EINVAL
 *  before validate, DP_EBUSY while running. */
DP_API int dp_graph_set_expected_ms(dp_graph_t *g, size_t id, uint64_t ms);

/* Binary compatibility: dp_job_spec_t, like dp_run_opts_t, grows at its
 * end. A program compiled with this header calls the _sized functions
 * (the macros below pass the size of its struct); one compiled with a 1.0
 * header calls dp_job_spec_init, dp_graph_add_job, dp_graph_add_job_id and
 * dp_plugins_add_job, which read and write only the 1.0 fields (up to
 * `limits`) and give the later ones their defaults. */
#define dp_job_spec_init(spec) dp_job_spec_init_sized((spec), sizeof(dp_job_spec_t))
#define dp_graph_add_job(g, spec, err, errlen)                                                                         \
    dp_graph_add_job_sized((g), (spec), sizeof(dp_job_spec_t), (err), (errlen))
#define dp_graph_add_job_id(g, spec, id, err, errlen)                                                                  \
    dp_graph_add_job_id_sized((g), (spec), sizeof(dp_job_spec_t), (id), (err), (errlen))

/* ------------------------------------------------------------------------ */
/* Running                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum dp_status {
    DP_STATUS_UNKNOWN = 0,   /* never reached, or cut off by cancellation */
    DP_STATUS_SUCCESS = 1,   /* ready, no error */
    DP_STATUS_NOT_READY = 2, /* ran, not ready (the seed's InProgress) */
    DP_STATUS_SKIPPED = 3,   /* successor of a not_ready (or kept-going failed) job, or
                              * not run by its trigger rule (dp_job_result_t.reason) */
    DP_STATUS_FAILED = 4     /* error, no retries left */
} dp_status_t;

/** "unknown", "success", "not_ready", "skipped", "failed". */
DP_API const char *dp_status_name(dp_status_t s);

typedef enum dp_run_outcome {
    DP_RUN_SUCCESS = 0,
    DP_RUN_FAILED = 1,
    DP_RUN_NOT_READY = 3,
    DP_RUN_TIMEOUT = 4,
    DP_RUN_CANCELLED = 130
} dp_run_outcome_t;
/* Deprecated: the tag's old name, from before it matched its typedef. Kept
 * so that code writing `enum dp_outcome_kind` still builds; use
 * dp_run_outcome_t. */
#define dp_outcome_kind dp_run_outcome

/** "success", "failed", "not_ready", "timeout", "cancelled". */
DP_API const char *dp_run_outcome_name(dp_run_outcome_t o);

/* Events for progress displays and traces. Called on worker threads. */
typedef enum dp_event_kind {
    DP_EV_ATTEMPT_START = 1,
    DP_EV_ATTEMPT_END = 2, /* status: the attempt's outcome mapped to a status */
    DP_EV_JOB_END = 3,     /* final status of a job that ran */
    DP_EV_JOB_SKIPPED = 4, /* emitted after the run for each skipped job */
    /* emitted at the run's start, on the calling thread, before any job
     * starts, for each reused job (dp_run_opts_t.reused): status success,
     * attempt 0, worker 0. Only a run given reused jobs emits it. */
    DP_EV_JOB_REUSED = 5
} dp_event_kind_t;

typedef struct dp_event {
    dp_event_kind_t kind;
    uint32_t job; /* job id */
    const char *name;
    unsigned attempt;
    unsigned worker;  /* 0-based worker index */
    uint64_t time_ns; /* CLOCK_MONOTONIC, relative to run start */
    dp_status_t status;
    const char *error; /* for ATTEMPT_END / JOB_END; may be NULL; NULL when status is unknown */
    /* JOB_END (DP_HAVE_EVENT_START): when the job started, on time_ns's
     * clock (as the result's start_ms; time_ns - start_ns is its duration
     * with every attempt and wait); -1 for every other kind. Lets a
     * recorder of ends keep nothing per job from DP_EV_ATTEMPT_START. */
    int64_t start_ns;
} dp_event_t;

/** Whether dp_event_t has start_ns. */
#define DP_HAVE_EVENT_START 1

typedef void (*dp_event_cb)(void *user, const dp_event_t *ev);

/* An executor: worker threads that outlive a run, for a caller that runs
 * graphs again and again (a watch loop, a controller calling dp_graph_run
 * every few seconds). A run given one (dp_run_opts_t.executor) starts its
 * workers on the executor's idle threads instead of creating threads, and
 * they go back to it when the run ends. The executor makes threads on
 * demand, up to `nthreads`, and keeps them until it is freed; a run that
 * wants more workers than the executor has idle (max_concurrent_jobs above
 * its size, or other runs using it at the same time) creates the rest as
 * threads of its own, as without an executor. max_concurrent_jobs still
 * bounds each run. Several runs, of one graph after another or of
 * different graphs at once, may share an executor. Its threads sleep
 * while no run uses them. A job's callbacks may thus run on a thread that
 * ran other runs' jobs before: keep no thread-local state across calls. */
typedef struct dp_executor dp_executor_t;

/** Whether this header has the executor (dp_executor_*, opts.executor). */
#define DP_HAVE_EXECUTOR 1

/** An executor keeping up to nthreads threads (>= 1; usually
 *  max_concurrent_jobs). No thread starts before a run needs one. NULL when
 *  nthreads is 0 or memory ran out. */
DP_API dp_executor_t *dp_executor_new(unsigned nthreads);
/** Stops and joins the executor's threads and frees it. No run may be
 *  using it. NULL is allowed. */
DP_API void dp_executor_free(dp_executor_t *ex);
/** How many threads the executor has made so far (they are all kept). */
DP_API unsigned dp_executor_threads(dp_executor_t *ex);

/* The clock of a run's job stamps (each job's start and end; results give
 * them as start_ms and duration_ms). Deadlines and timeouts always use
 * CLOCK_MONOTONIC whatever the choice. */
typedef enum dp_clock {
    /* DAGGERPOOL_CLOCK from the environment, as it was when the library was
     * loaded: "monotonic" is DP_CLOCK_MONOTONIC, unset or empty is
     * DP_CLOCK_AUTO, and any other value refuses the run (DP_EINVAL, with
     * the fix). */
    DP_CLOCK_DEFAULT = 0,
    /* The CPU's time-stamp counter where it is invariant (several times
     * cheaper to read than the system clock on virtual machines), turned
     * into CLOCK_MONOTONIC time when the run ends; else CLOCK_MONOTONIC. */
    DP_CLOCK_AUTO = 1,
    DP_CLOCK_MONOTONIC = 2, /* CLOCK_MONOTONIC for every stamp */
    /* The time-stamp counter; the run is refused (DP_EINVAL) on a CPU
     * without an invariant one. */
    DP_CLOCK_TSC = 3
} dp_clock_t;

/** Whether this header has dp_clock_t, opts.clock and dp_result_clock. */
#define DP_HAVE_RUN_CLOCK 1

/** "default", "auto", "monotonic", "tsc". */
DP_API const char *dp_clock_name(dp_clock_t c);

typedef struct dp_run_opts {
    unsigned max_concurrent_jobs; /* default 4; >= 1 */
    uint64_t timeout_ms;          /* whole run; 0: none */
    bool fail_fast;               /* default true */
    dp_ctx_t *parent;             /* optional: cancel it to cancel the run */
    dp_store_t *store;            /* optional: snapshots of running jobs */
    dp_log_cb log;                /* optional; none: nothing is logged */
    void *log_user;
    dp_log_level_t log_level; /* default DP_LOG_INFO */
    dp_event_cb on_event;     /* optional */
    void *event_user;
    uint64_t seed; /* jitter PRNG seed; 0: from the clock */
    /* Appended after 1.0 (set by dp_run_opts_init: initialise with it). */
    dp_executor_t *executor; /* optional: run the workers on its threads */
    dp_clock_t clock;        /* job stamps; default DP_CLOCK_DEFAULT (see dp_clock_t) */
    /* Jobs reused from an earlier run (DP_HAVE_RUN_REUSED): ids of the
     * graph, as dp_graph_job_id gives them once the graph is validated;
     * any order, repeats allowed; an id out of range refuses the run
     * (DP_EINVAL, nothing runs). Not copied: valid until the run returns.
     * A reused job is `success` from the run's start: none of its
     * callbacks is called, it has no attempts, start or duration, and its
     * successors do not wait for it; frontiers and boundary count it as
     * any success. A job listed here with a dependency that is not reused
     * (itself, or because of its own dependencies) is not reused: it
     * runs, since what it depends on runs again, and so does everything
     * below it. The result says which jobs were reused
     * (dp_job_result_t.reused); each gets a DP_EV_JOB_REUSED event. */
    const uint32_t *reused;
    size_t nreused; /* how many ids `reused` holds; 0: none (the default) */
} dp_run_opts_t;

/** Whether this header has opts.reused, dp_job_result_t.reused and
 *  DP_EV_JOB_REUSED. */
#define DP_HAVE_RUN_REUSED 1

DP_API void dp_run_opts_init(dp_run_opts_t *opts);
/** dp_run_opts_init for a struct of `size` bytes (what the caller's header
 *  says): fields beyond it are not touched. */
DP_API void dp_run_opts_init_sized(dp_run_opts_t *opts, size_t size);

typedef struct dp_result dp_result_t;

/** Validates g if needed and runs it. Returns a result (free with
 *  dp_result_free) or NULL with err set when the graph or options are
 *  invalid (nothing ran) or memory ran out. A graph may be run again after
 *  a run returns; one graph runs at most once at a time (DP_EBUSY). */
DP_API dp_result_t *dp_graph_run(dp_graph_t *g, const dp_run_opts_t *opts, char *err, size_t errlen);
/** dp_graph_run for opts of `size` bytes: fields beyond it take their
 *  defaults. */
DP_API dp_result_t *dp_graph_run_sized(dp_graph_t *g, const dp_run_opts_t *opts, size_t size, char *err, size_t errlen);

/* Binary compatibility: dp_run_opts_t grows at its end. A program compiled
 * with this header calls the _sized functions, which learn the size of its
 * struct; one compiled with a 1.0 header calls dp_run_opts_init and
 * dp_graph_run, which read and write only the 1.0 fields (up to `seed`).
 * So a program built against any 1.x header keeps working with a newer
 * libdaggerpool.so.1 without being rebuilt. */
#define dp_run_opts_init(opts) dp_run_opts_init_sized((opts), sizeof(dp_run_opts_t))
#define dp_graph_run(g, opts, err, errlen) dp_graph_run_sized((g), (opts), sizeof(dp_run_opts_t), (err), (errlen))

/* ------------------------------------------------------------------------ */
/* Result                                                                    */
/* ------------------------------------------------------------------------ */

/* Per-job result; ids are the graph's (name order, or the order added for
 * a graph built through ids). */
typedef struct dp_job_result {
    const char *name;
    dp_status_t status;
    const char *error;          /* last error message, or NULL (always NULL when unknown) */
    unsigned attempts;          /* attempts started */
    int64_t start_ms;           /* first attempt start from run start; -1 never started */
    int64_t duration_ms;        /* until the job ended; -1 never started */
    const char *plugin;         /* label, may be NULL */
    const char *plugin_version; /* as set by dp_job_set_version, may be NULL */
    /* Appended after 1.0 (the library allocates these records). */
    bool reused; /* success carried over from an earlier run (dp_run_opts_t.reused): it did not run */
    /* Appended after 1.0 (the library makes these records; a program built
     * against an older header does not read them). */
    dp_run_if_t run_if;       /* the job's rule */
    bool continue_on_failure; /* the job's setting */
    /* Why a rule ran or skipped the job, or NULL (a job the default rule ran,
     * or skipped in a graph that uses no rule): "dependencies ended", "a
     * dependency failed", "no dependency failed", "a dependency did not
     * succeed", "a dependency was not needed", "failure tolerated
     * (continue_on_failure)", "cleanup after fail-fast", "cleanup after
     * timeout", "cleanup after cancellation". Static strings. */
    const char *reason;
} dp_job_result_t;

/* A sorted list of job ids, owned by whoever the function says. */
typedef struct dp_id_list {
    size_t count;
    uint32_t *ids;
} dp_id_list_t;

typedef struct dp_frontier {
    uint32_t job;
    dp_status_t status;
    dp_id_list_t blocked_by; /* direct dependencies not success */
    dp_id_list_t subtree;    /* the job and all its transitive successors */
} dp_frontier_t;

DP_API void dp_result_free(dp_result_t *r);
/** The graph it came from (must outlive the result). */
DP_API const dp_graph_t *dp_result_graph(const dp_result_t *r);
DP_API size_t dp_result_job_count(const dp_result_t *r);
/** Job `id`'s record, valid until dp_result_free. The records are made on
 *  the first call (so a caller that only wants the outcome never pays for
 *  them); NULL when id is out of range, or when that first call runs out of
 *  memory (a later call tries again). */
DP_API const dp_job_result_t *dp_result_job(const dp_result_t *r, size_t id);
/** By name; NULL if no such job. */
DP_API const dp_job_result_t *dp_result_find(const dp_result_t *r, const char *name);
/** Job `id`'s final status, read straight from the run's record: no
 *  per-job record is made (a few ns a job, for a caller that reads every
 *  job's status). DP_STATUS_UNKNOWN when id is out of range. Any thread. */
DP_API dp_status_t dp_result_status(const dp_result_t *r, size_t id);
DP_API dp_run_outcome_t dp_result_outcome(const dp_result_t *r);
/** All jobs success (trigger rules: or settled, i.e. a failure tolerated by
 *  continue_on_failure, or a job skipped as not needed): the outcome is
 *  DP_RUN_SUCCESS. [IsReady] */
DP_API bool dp_result_is_ready(const dp_result_t *r);
/** Any job failed, a failure tolerated by continue_on_failure aside.
 *  [IsFailed] */
DP_API bool dp_result_is_failed(const dp_result_t *r);
/** The global timeout cut the run. [IsTimeouted] */
DP_API bool dp_result_timed_out(const dp_result_t *r);
/** Cancelled from outside (parent ctx / signal). */
DP_API bool dp_result_cancelled(const dp_result_t *r);
/** "timeout after 10s" on timeout, else the error of the failed job that
 *  ended first (a tolerated failure, and a final job's failure in the
 *  cleanup phase after a cut, aside), else NULL. [FirstError] */
DP_API const char *dp_result_first_error(const dp_result_t *r);
/** The not_ready job of the smallest id (name order, or the order added
 *  for a graph built through ids), or -1. [FirstInProgress] */
DP_API long dp_result_first_not_ready(const dp_result_t *r);
/** Suggested delay before re-running (the soonest readiness poll or backoff
 *  that was cut short, or a not_ready job's poll period), or -1. */
DP_API int64_t dp_result_requeue_after_ms(const dp_result_t *r);
/** How long job id waited for its pool's slots, in ms, once its
 *  dependencies were done (0: it got them at once); -1 for a job without a
 *  pool, or that never got its slots (never ready, or the run ended while
 *  it waited). (DP_HAVE_SCHEDULING) */
DP_API int64_t dp_result_pool_wait_ms(const dp_result_t *r, size_t id);
/** Wall time of the run in ms. */
DP_API int64_t dp_result_duration_ms(const dp_result_t *r);

/* What decided a job's waits (1.2): its readiness poll under the settings of
 * dp_readiness_ext_t, its deadline, a retry delay it suggested. Owned by the
 * result; the struct may grow at its end. */
typedef struct dp_probe_stats {
    unsigned probes;    /* probes made */
    unsigned successes; /* consecutive ready probes at the end */
    unsigned failures;  /* consecutive failed probes at the end */
    uint64_t period_ms; /* the period at the end (grown by the backoff) */
} dp_probe_stats_t;

typedef struct dp_job_waits {
    bool polled;                /* readiness below is its last attempt's poll */
    dp_probe_stats_t readiness; /* for a job whose readiness_ext is set */
    bool has_deadline;          /* the job has a deadline ... */
    bool deadline_hit;          /* ... and it ended the job (failed) */
    /* The last retry delay the job suggested (dp_job_retry_after) that was
     * used: as a retry's backoff, a probe's wait or the requeue hint; -1:
     * none. */
    int64_t retry_after_ms;
} dp_job_waits_t;

/** Job id's waits, or NULL when it started with none of those settings and
 *  suggested no delay that was used (or id is out of range). */
DP_API const dp_job_waits_t *dp_result_job_waits(const dp_result_t *r, size_t id);
/** The clock the run stamped its jobs with: DP_CLOCK_TSC or
 *  DP_CLOCK_MONOTONIC (what DP_CLOCK_DEFAULT or DP_CLOCK_AUTO came to). */
DP_API dp_clock_t dp_result_clock(const dp_result_t *r);
/** What cut the run before its final jobs (run_if all_done or
 *  any_failed) ran in a cleanup phase: "fail_fast", "timeout" or
 *  "cancelled"; NULL when no such phase ran. */
DP_API const char *dp_result_cleanup_after(const dp_result_t *r);
/** Direct dependencies of job that are not success (caller frees with
 *  dp_id_list_free); a dependency that failed with continue_on_failure, or
 *  that a rule skipped as not needed, does not block. [Blockers] */
DP_API int dp_result_blockers(const dp_result_t *r, uint32_t job, dp_id_list_t *out);
/** The job and every successor reachable from it. [Subtree] */
DP_API int dp_result_subtree(const dp_result_t *r, uint32_t job, dp_id_list_t *out);
/** Jobs not success that are failed or not_ready, or whose dependencies all
 *  succeeded; owned by the result. [Frontiers] With trigger rules, "success"
 *  here means settled: success, a failure tolerated by continue_on_failure,
 *  or skipped as not needed (README.md, "Trigger rules and final jobs"). */
DP_API size_t dp_result_frontiers(const dp_result_t *r, const dp_frontier_t **out);
/** success jobs with a non-success job (with trigger rules: one not
 *  settled, as for the frontiers) somewhere below them; owned by the
 *  result. [BoundarySubtrees] */
DP_API const dp_id_list_t *dp_result_boundary(const dp_result_t *r);
DP_API void dp_id_list_free(dp_id_list_t *list);

/* ------------------------------------------------------------------------ */
/* Readiness on its own (the seed's Prober and Poller)                       */
/* ------------------------------------------------------------------------ */

/* A readiness check: returns DP_READY, DP_NOT_READY, or DP_ERROR with a
 * message written to err. It should respect ctx. */
typedef dp_outcome_t (*dp_check_cb)(dp_ctx_t *ctx, void *arg, char *err, size_t errlen);

/** One check bounded by timeout_ms (0: none) under ctx. A check that
 *  outlives the bound gives DP_ERROR "probe timed out after ...". */
DP_API dp_outcome_t dp_probe(dp_ctx_t *ctx, uint64_t timeout_ms, dp_check_cb check, void *arg, char *err,
                             size_t errlen);
/** Probes at once, then every period_ms, until ready (DP_READY), an error
 *  (DP_ERROR), timeout_ms passes (DP_NOT_READY; 0: no own bound) or ctx is
 *  done (DP_ERROR with "cancelled"/"timed out"). */
DP_API dp_outcome_t dp_poll(dp_ctx_t *ctx, uint64_t period_ms, uint64_t probe_timeout_ms, uint64_t timeout_ms,
                            dp_check_cb check, void *arg, char *err, size_t errlen);
/** dp_poll with the probe settings of a job (1.2): rd's period, probe
 *  timeout and timeout, and ext's initial delay, thresholds and growing
 *  period (ext NULL: none), as dp_readiness_ext_t says. Unlike dp_poll,
 *  period 0 means one probe (after the initial delay). stats (may be NULL)
 *  gets the probe counts. DP_ERROR "invalid ..." for settings a job would
 *  be refused. */
DP_API dp_outcome_t dp_poll_ext(dp_ctx_t *ctx, const dp_readiness_t *rd, const dp_readiness_ext_t *ext,
                                dp_check_cb check, void *arg, char *err, size_t errlen, dp_probe_stats_t *stats);

/* ------------------------------------------------------------------------ */
/* Params: the typed values a plugin job type is configured with             */
/* ------------------------------------------------------------------------ */

/* A group of named values (string, integer, float, boolean, list of strings,
 * nested group), in insertion order. Plugins read it through the typed
 * getters of <daggerpool/plugin.h>; the workflow file builds it from a
 * libconfig group; an embedder builds it with these calls. */
typedef struct dp_params dp_params_t;

DP_API dp_params_t *dp_params_new(void);
DP_API void dp_params_free(dp_params_t *p);
/** Where the group came from, for messages ("deploy.cfg", 12). */
DP_API void dp_params_set_origin(dp_params_t *p, const char *file, int line);
DP_API int dp_params_set_string(dp_params_t *p, const char *key, const char *value);
DP_API int dp_params_set_int(dp_params_t *p, const char *key, int64_t value);
DP_API int dp_params_set_float(dp_params_t *p, const char *key, double value);
DP_API int dp_params_set_bool(dp_params_t *p, const char *key, bool value);
DP_API int dp_params_set_list(dp_params_t *p, const char *key, const char *const *items, size_t n);
/** Adds an empty nested group under key and returns it (owned by p). */
DP_API dp_params_t *dp_params_add_group(dp_params_t *p, const char *key);
/** A deep copy. */
DP_API dp_params_t *dp_params_clone(const dp_params_t *p);

/* ------------------------------------------------------------------------ */
/* Plugins                                                                   */
/* ------------------------------------------------------------------------ */

/* The plugin registry: the search path, the loaded plugins (each a
 * refcounted version: a job pins the version it starts on), and the host
 * table handed to them. Thread-safe. */
typedef struct dp_plugins dp_plugins_t;

DP_API dp_plugins_t *dp_plugins_new(void);
/** Releases the registry. No run that uses it may be in progress. Graphs
 *  holding plugin jobs keep it alive (each such job holds a reference) until
 *  they are freed; then everything is unloaded. Version strings in results
 *  (dp_job_result_t.plugin_version) are interned here, so they stay valid
 *  while the graph the result came from is alive. */
DP_API void dp_plugins_free(dp_plugins_t *pl);
/** Appends a directory to the search path (NAME is found as DIR/NAME.so). */
DP_API int dp_plugins_add_path(dp_plugins_t *pl, const char *dir);
/** Accept plugin files or directories writable by others than owner/root. */
DP_API void dp_plugins_allow_insecure(dp_plugins_t *pl, bool allow);
/** Where plugin and loader messages go (see dp_log_cb). */
DP_API void dp_plugins_set_log(dp_plugins_t *pl, dp_log_cb log, void *user, dp_log_level_t level);
/** The store that the host API's store_* functions use (not owned). */
DP_API void dp_plugins_set_store(dp_plugins_t *pl, dp_store_t *store);
/** Loads plugin `name` (from `path` if not NULL, else from the search path)
 *  unless it is loaded already. Refuses with a message naming the file, the
 *  reason and the fix; nothing is registered then. */
DP_API int dp_plugins_load(dp_plugins_t *pl, const char *name, const char *path, char *err, size_t errlen);
/** Loads the plugin's file again and swaps it in atomically once it is
 *  fully checked; jobs in flight finish on the old version. On failure the
 *  old version keeps serving. */
DP_API int dp_plugins_reload(dp_plugins_t *pl, const char *name, char *err, size_t errlen);
/** Adds to g a job whose work is plugin job type `type` ("PLUGIN.TYPE"),
 *  configured with params (copied). spec gives the name and the scheduling
 *  settings; its run/check/user are filled in here. The plugin is loaded on
 *  demand; an instance is created and destroyed once to check the params.
 *  Errors: unknown plugin or type (the message lists the plugin's types),
 *  params refused (the plugin's message). */
DP_API int dp_plugins_add_job(dp_plugins_t *pl, dp_graph_t *g, const dp_job_spec_t *spec, const char *type,
                              const dp_params_t *params, char *err, size_t errlen);
/** dp_plugins_add_job for a spec of `size` bytes (the header's macro passes
 *  it; see dp_job_spec_t's binary compatibility). */
DP_API int dp_plugins_add_job_sized(dp_plugins_t *pl, dp_graph_t *g, const dp_job_spec_t *spec, size_t size,
                                    const char *type, const dp_params_t *params, char *err, size_t errlen);
#define dp_plugins_add_job(pl, g, spec, type, params, err, errlen)                                                     \
    dp_plugins_add_job_sized((pl), (g), (spec), sizeof(dp_job_spec_t), (type), (params), (err), (errlen))

typedef struct dp_plugin_info {
    const char *name;
    const char *version;
    const char *description;
    const char *path; /* the file it was loaded from */
    unsigned abi_major, abi_minor;
    const char *const *types; /* NULL-terminated job type names */
    uint64_t loaded_at_ms;    /* CLOCK_REALTIME */
    unsigned generation;      /* 1 for the first load, +1 per reload */
    unsigned jobs_in_flight;  /* jobs pinned to this version */
    bool current;             /* false for an old version still draining */
    const char *error;        /* dp_plugins_scan only: why it was refused */
} dp_plugin_info_t;

/** Calls fn for each loaded version (current and draining), by name. */
DP_API int dp_plugins_foreach(dp_plugins_t *pl, int (*fn)(const dp_plugin_info_t *info, void *arg), void *arg);
/** Probes every NAME.so on the search path (loading each in isolation,
 *  registering nothing) and calls fn with its details, or its error. */
DP_API int dp_plugins_scan(dp_plugins_t *pl, int (*fn)(const dp_plugin_info_t *info, void *arg), void *arg);

/* ------------------------------------------------------------------------ */
/* Plugin reload: watching plugin files                                      */
/* ------------------------------------------------------------------------ */

/*
 * A reloader watches the file of every plugin loaded in a registry (inotify
 * on its directory, so a new file renamed into place and a file rewritten in
 * place are both seen), waits until a changed file is whole (its size and
 * mtime stay put for `settle_ms` and its ELF headers lie within it), then
 * calls dp_plugins_reload, unless the file holds the same bytes as the
 * version that serves (a touch, an identical copy: left alone, logged at
 * info). A refused reload changes nothing: the old version keeps serving,
 * the reason is logged at error (dp_plugins_set_log), reported and counted,
 * and the next change of the file is tried again. A file that stays cut
 * short for 40 settle intervals is refused the same way.
 *
 * Drive it from your own loop (poll dp_reloader_fd() for reading, then call
 * dp_reloader_dispatch()), or let it run on a thread of its own
 * (dp_reloader_start/stop). Not both at once.
 */
typedef struct dp_reloader dp_reloader_t;

/* One reload attempt, successful or not. Pointers are valid only during the
 * callback, except the version strings, which live as long as the registry. */
typedef struct dp_reload_event {
    const char *plugin;
    const char *path;        /* the file watched */
    int status;              /* DP_OK: swapped; negative dp_err_t: refused */
    const char *error;       /* why it was refused; NULL on success */
    const char *old_version; /* the version serving before (and, if refused, after) */
    const char *new_version; /* NULL if refused */
    unsigned generation;     /* of the new version; 0 if refused */
    unsigned in_flight;      /* jobs that still run on the old version */
    bool triggered;          /* by dp_reloader_trigger, not a file change */
    uint64_t changed_ns;     /* CLOCK_MONOTONIC: first change seen (0 if triggered) */
    uint64_t complete_ns;    /* CLOCK_MONOTONIC: file found whole, reload started */
    uint64_t swapped_ns;     /* CLOCK_MONOTONIC: the new version serves (0 if refused) */
} dp_reload_event_t;

/* Called on the thread that dispatches; must not call dp_reloader_dispatch. */
typedef void (*dp_reload_cb)(void *user, const dp_reload_event_t *ev);

typedef struct dp_reloader_opts {
    uint64_t settle_ms;     /* a changed file must keep size and mtime this long; default 50 */
    dp_reload_cb on_reload; /* optional */
    void *user;
} dp_reloader_opts_t;

DP_API void dp_reloader_opts_init(dp_reloader_opts_t *opts);
/** A reloader for the plugins loaded in pl (which must outlive it); opts may
 *  be NULL. It watches the plugins loaded now, and picks up plugins loaded
 *  later at dp_reloader_refresh (and at every trigger). NULL with err set
 *  when inotify is not available. */
DP_API dp_reloader_t *dp_reloader_new(dp_plugins_t *pl, const dp_reloader_opts_t *opts, char *err, size_t errlen);
/** Stops its thread if started, and frees it. */
DP_API void dp_reloader_free(dp_reloader_t *r);
/** A descriptor that becomes readable when dp_reloader_dispatch has work
 *  (a file event, a settle interval that ended, a trigger). Owned by r. */
DP_API int dp_reloader_fd(dp_reloader_t *r);
/** Does the pending work without blocking; returns the number of plugins
 *  swapped, or a negative dp_err_t. Calls from several threads are
 *  serialised. */
DP_API int dp_reloader_dispatch(dp_reloader_t *r);
/** Asks for a reload of every watched plugin at the next dispatch, file
 *  changed or not (SIGHUP). Async-signal-safe; any thread. */
DP_API void dp_reloader_trigger(dp_reloader_t *r);
/** Asks to re-read the set of loaded plugins (after loading more) at the
 *  next dispatch. Async-signal-safe; any thread. */
DP_API void dp_reloader_refresh(dp_reloader_t *r);
/** Runs dispatch on a thread of its own until dp_reloader_stop. */
DP_API int dp_reloader_start(dp_reloader_t *r);
/** Stops and joins the thread (a dispatch under way completes first). */
DP_API void dp_reloader_stop(dp_reloader_t *r);
/** Counts since creation: swaps done and reloads refused. */
DP_API void dp_reloader_stats(dp_reloader_t *r, unsigned long *swaps, unsigned long *refused);

/* ------------------------------------------------------------------------ */
/* Workflow files                                                            */
/* ------------------------------------------------------------------------ */

/* A workflow file (libconfig; DESIGN.md "The workflow file") read in two
 * steps, so that a file's mistakes are found before any plugin is loaded and
 * the caller chooses the plugin search order:
 *
 *   wf = dp_workflow_load(path, err, sizeof err);        // file checked
 *   for (i = 0; (dir = dp_workflow_plugin_path(wf, i)); i++)
 *       dp_plugins_add_path(pl, dir);                     // then your own dirs
 *   dp_workflow_build(wf, pl, err, sizeof err);          // plugins, params
 *   dp_workflow_run_opts(wf, &opts);
 *   r = dp_graph_run(dp_workflow_graph(wf), &opts, err, sizeof err);
 *
 * Refusals list every problem, one per line, each "FILE:LINE: what was
 * found, what was expected, the fix". */
typedef struct dp_workflow dp_workflow_t;

/** Reads and checks the file: syntax, keys (an unknown one gets the nearest
 *  known one suggested), types, durations, duplicate names, unknown
 *  dependencies, cycles (the whole path). @include is relative to the
 *  including file's directory, or absolute. Only regular files are read (a
 *  directory, FIFO or device is refused unread). No plugin is touched. NULL
 *  with err set on refusal. The caller frees the workflow with
 *  dp_workflow_free. Any thread. */
DP_API dp_workflow_t *dp_workflow_load(const char *path, char *err, size_t errlen);
/** Frees the workflow and its graph (no run of it may be in progress, and
 *  results of its graph must be freed first). */
DP_API void dp_workflow_free(dp_workflow_t *wf);
/** workflow.name, or the file's base name without extension. */
DP_API const char *dp_workflow_name(const dp_workflow_t *wf);
/** The i-th directory of workflow.plugin_path, resolved against the file's
 *  directory; NULL past the end. Owned by wf. */
DP_API const char *dp_workflow_plugin_path(const dp_workflow_t *wf, size_t i);
/** Loads the file's explicit `plugins` into pl, then adds every job with
 *  dp_plugins_add_job (unknown plugin or type, params refused by the type).
 *  DP_ECONFIG with every problem listed in err. Runs once; later calls
 *  return the first answer. pl must outlive wf. */
DP_API int dp_workflow_build(dp_workflow_t *wf, dp_plugins_t *pl, char *err, size_t errlen);
/** The graph built by dp_workflow_build (owned by wf), or NULL before. */
DP_API dp_graph_t *dp_workflow_graph(dp_workflow_t *wf);
/** Sets opts' max_concurrent_jobs, timeout_ms and fail_fast from the file
 *  (defaults 4, none, true); leaves the other fields alone. */
DP_API void dp_workflow_run_opts(const dp_workflow_t *wf, dp_run_opts_t *opts);

/* ------------------------------------------------------------------------ */
/* Durations                                                                 */
/* ------------------------------------------------------------------------ */

/** Parses "250ms", "30s", "5m", "1h30m", "1.5s" or a bare integer of
 *  milliseconds. DP_EINVAL on anything else (err says why). */
DP_API int dp_duration_parse(const char *text, uint64_t *ms, char *err, size_t errlen);
/** Formats ms as "1h30m", "2s", "250ms", "1.5s" into buf. */
DP_API const char *dp_duration_format(uint64_t ms, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* DAGGERPOOL_H */
