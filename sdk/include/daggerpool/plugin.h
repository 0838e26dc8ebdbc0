/*
 * daggerpool/plugin.h - the daggerpool plugin ABI, version 1.
 *
 * The only header a job plugin needs. A plugin is a shared object that
 * exports exactly one symbol, DP_PLUGIN_ENTRY (dp_plugin_entry_v1), and never
 * links against the host: every host service is reached through the
 * dp_host_api table handed to the entry point. See sdk/ABI.md for the
 * compatibility promise.
 *
 * Rules that keep the ABI stable (never break them within major 1):
 *  - Every struct that crosses the boundary starts with `uint32_t
 *    struct_size` and only grows at the end. A field that is zero means the
 *    old behaviour. The host reads a smaller plugin struct as if zero-filled.
 *  - New host functions are appended to dp_host_api; test for them with
 *    DP_HOST_HAS(host, fn) before calling.
 *  - Handles (dp_plugin_ctx, dp_params) are opaque.
 *
 * A plugin owns no threads, timers, thread-local destructors or atexit
 * handlers: the host may unload it (for example after a hot swap).
 *
 * Minimal plugin:
 *
 *   #include <daggerpool/plugin.h>
 *   static const dp_host_api *host;
 *   static dp_plugin_result hello_run(dp_plugin_ctx *ctx, void *state) {
 *       (void)state;
 *       host->log(ctx, DP_PLUGIN_LOG_INFO, "hello from %s", host->job_name(ctx));
 *       return DP_PLUGIN_READY;
 *   }
 *   static const dp_job_type hello = {
 *       .struct_size = sizeof(dp_job_type), .name = "hello", .run = hello_run };
 *   static const dp_job_type *const types[] = { &hello, NULL };
 *   static const dp_plugin_desc desc = {
 *       .struct_size = sizeof(dp_plugin_desc),
 *       .abi_major = DP_PLUGIN_ABI_MAJOR, .abi_minor = DP_PLUGIN_ABI_MINOR,
 *       .name = "example", .version = "1.0.0", .job_types = types };
 *   DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h) {
 *       host = h;
 *       return &desc;
 *   }
 */
#ifndef DAGGERPOOL_PLUGIN_H
#define DAGGERPOOL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DP_PLUGIN_ABI_MAJOR 1
#define DP_PLUGIN_ABI_MINOR 2

/* The entry symbol carries the major, so a plugin of another major is not
 * even found by a host (and gets a clear message instead of a crash). */
#define DP_PLUGIN_ENTRY dp_plugin_entry_v1
#define DP_PLUGIN_ENTRY_NAME "dp_plugin_entry_v1"

#if defined(__GNUC__) || defined(__clang__)
#define DP_PLUGIN_EXPORT __attribute__((visibility("default")))
#define DP_PLUGIN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DP_PLUGIN_EXPORT
#define DP_PLUGIN_PRINTF(f, a)
#endif

/* Opaque handles. */
typedef struct dp_plugin_ctx dp_plugin_ctx; /* one call: create, run or check */
typedef struct dp_params dp_params;         /* a job's params (a group) */

/* What run and check return. */
typedef enum dp_plugin_result {
    DP_PLUGIN_READY = 0,     /* reached the desired state */
    DP_PLUGIN_NOT_READY = 1, /* not yet */
    DP_PLUGIN_ERROR = 2      /* failed; set the message with host->set_error */
} dp_plugin_result;

/* Log levels (same numbers as the host's). */
enum { DP_PLUGIN_LOG_ERROR = 0, DP_PLUGIN_LOG_WARN = 1, DP_PLUGIN_LOG_INFO = 2, DP_PLUGIN_LOG_DEBUG = 3 };

/* Flags for set_error. */
#define DP_PLUGIN_ERROR_PERMANENT 0x1u /* do not retry */

/* Return codes of the param getters. A negative code also records a message
 * ("param 'port' (deploy.cfg:12): expected an integer, found a string"); if
 * create then returns non-zero without calling set_error, that message
 * becomes the error. So `if (host->param_int(p, "port", &port) < 0) return
 * -1;` is enough. */
enum {
    DP_PARAM_OK = 0,
    DP_PARAM_ABSENT = 1,      /* key not set: *out untouched, use your default */
    DP_PARAM_WRONG_TYPE = -1, /* set, but not of the asked type (message recorded) */
    DP_PARAM_BAD_VALUE = -2   /* right type, invalid value, e.g. a bad duration */
};

/*
 * The host's services. Handed to the entry point; valid until the plugin is
 * unloaded. Functions taking a ctx may be called only during the call that
 * received that ctx (create, run or check), on the thread that received it;
 * ctx is never NULL. The param getters may be called whenever the params are
 * valid (during create, and later from state that keeps the pointer).
 */
typedef struct dp_host_api {
    uint32_t struct_size; /* sizeof(dp_host_api) of the host */
    uint16_t abi_major;
    uint16_t abi_minor;
    const char *host_version;

    /* Logging, tagged with the job's name, attempt and plugin. */
    void (*log)(dp_plugin_ctx *ctx, int level, const char *fmt, ...) DP_PLUGIN_PRINTF(3, 4);
    /* Sets the error message of this call; flags: DP_PLUGIN_ERROR_*. The
     * plugin then returns DP_PLUGIN_ERROR (or non-zero from create). A later
     * call replaces an earlier message. */
    void (*set_error)(dp_plugin_ctx *ctx, unsigned flags, const char *fmt, ...) DP_PLUGIN_PRINTF(3, 4);

    /* The job. */
    const char *(*job_name)(dp_plugin_ctx *ctx);
    unsigned (*attempt)(dp_plugin_ctx *ctx); /* 1-based; 0 in create */

    /* Cancellation and deadlines (cooperative: respect them). */
    int (*is_cancelled)(dp_plugin_ctx *ctx);     /* non-zero once done */
    int64_t (*remaining_ms)(dp_plugin_ctx *ctx); /* -1: no deadline */
    /* Sleeps up to ms; 0 after the full sleep, -1 if cancelled or timed out. */
    int (*sleep_ms)(dp_plugin_ctx *ctx, uint64_t ms);
    /* Readable once the call is cancelled or past its deadline; for poll(2).
     * Owned by the host: do not read or close it. -1 if unavailable. */
    int (*cancel_fd)(dp_plugin_ctx *ctx);

    /* Params (typed getters; never libconfig objects). On DP_PARAM_OK the
     * out pointer is set; strings stay valid as long as the params do (for
     * the whole life of the job instance). */
    int (*param_string)(const dp_params *p, const char *key, const char **out);
    int (*param_int)(const dp_params *p, const char *key, int64_t *out);
    int (*param_float)(const dp_params *p, const char *key, double *out);
    int (*param_bool)(const dp_params *p, const char *key, int *out);
    /* An integer of milliseconds or a string such as "250ms", "5m", "1h30m". */
    int (*param_duration_ms)(const dp_params *p, const char *key, uint64_t *out);
    /* A list of strings: count, then items by index. */
    int (*param_list_count)(const dp_params *p, const char *key, size_t *count);
    int (*param_list_item)(const dp_params *p, const char *key, size_t index, const char **out);
    /* A nested group. */
    int (*param_group)(const dp_params *p, const char *key, const dp_params **out);
    /* The keys of a group, in file order. */
    size_t (*param_count)(const dp_params *p);
    const char *(*param_key_at)(const dp_params *p, size_t index);
    /* Refuses keys not in `known` (NULL-terminated): returns 0, or -1 after
     * setting "unknown param 'x' (did you mean 'y'?)" as the call's error. */
    int (*params_check_known)(dp_plugin_ctx *ctx, const dp_params *p, const char *const *known);

    /* The host's store, shared across runs and hot swaps. Values are bytes;
     * the host copies them. Each returns -1 if the host has no store or is
     * out of memory. Prefix keys with your plugin's name. */
    /* 0 on success. */
    int (*store_set)(dp_plugin_ctx *ctx, const char *key, const void *data, size_t len);
    /* Copies up to cap bytes into buf and sets *len to the full length (so a
     * short buf can be retried); returns 0, or 1 if the key is absent. */
    int (*store_get)(dp_plugin_ctx *ctx, const char *key, void *buf, size_t cap, size_t *len);
    /* 0 on success, 1 if the key was absent. */
    int (*store_delete)(dp_plugin_ctx *ctx, const char *key);

    /* Appended in later minors go below this line. */

    /* ABI 1.2. The job suggests how long to wait before it is tried again
     * (a remote system said when to look again): used instead of the
     * backoff when this attempt fails and is retried, instead of the period
     * before the next readiness probe when the poll goes on, and as the
     * run's requeue hint when the job ends not ready or failed (not for a
     * permanent error). Only the suggestion of the current run or check
     * call counts (an attempt's create is part of its run); a later call
     * replaces it. Ignored in end and in the create that checks the params
     * when the job is added.
     * Test with DP_HOST_HAS(host, retry_after) first. */
    void (*retry_after)(dp_plugin_ctx *ctx, uint64_t ms);
} dp_host_api;

/* Whether the host offers function `fn` (a newer minor may add some). */
#define DP_HOST_HAS(host, fn)                                                                                          \
    ((host) != NULL && offsetof(dp_host_api, fn) + sizeof((host)->fn) <= (size_t)(host)->struct_size &&                \
     (host)->fn != NULL)

/*
 * A job type. `create` turns params into the instance state (may be NULL);
 * `run` does the work; `check` decides readiness (optional); `destroy` frees
 * the state. At least one of run and check is required; a type with only
 * `check` is a readiness probe. All four are optional otherwise.
 *
 * Lifecycle: create is called once when the job is added (to check the
 * params; destroyed at once), then once per attempt, before run (or before
 * the first check of a check-only type); destroy ends the attempt, after its
 * last check. All calls of one attempt use the same plugin version, so state
 * never crosses a hot swap. Different jobs run concurrently on different
 * threads: keep per-job data in the state, not in globals. The calls of one
 * attempt never overlap, but may come on different threads (a polled check
 * is run by whichever worker keeps time): no thread-local state.
 */
typedef struct dp_job_type {
    uint32_t struct_size; /* sizeof(dp_job_type) */
    const char *name;     /* e.g. "sleep": the job's type is "PLUGIN.NAME" */
    const char *description;
    /* 0 on success; non-zero refuses the params (message via set_error). */
    int (*create)(dp_plugin_ctx *ctx, const dp_params *params, void **state);
    dp_plugin_result (*run)(dp_plugin_ctx *ctx, void *state);
    dp_plugin_result (*check)(dp_plugin_ctx *ctx, void *state);
    void (*destroy)(void *state);

    /* ABI 1.1. Optional: called once at the end of an attempt, just before
     * destroy, with a ctx that says how the attempt ended: is_cancelled(ctx)
     * is non-zero when it was cut short (the run was cancelled or timed out,
     * or the job's own timeout passed), zero when it ended on its own
     * outcome (ready, not ready, error, or the readiness wait gave up). For
     * a plugin whose work outlives a call (a remote job) this is where to
     * cancel it. log works; set_error is ignored. */
    void (*end)(dp_plugin_ctx *ctx, void *state);

    /* ABI 1.2. DP_JOB_TYPE_* flags (0: none, the behaviour above). */
    uint32_t flags;
} dp_job_type;

/* dp_job_type.flags (ABI 1.2; a plugin built against 1.0 or 1.1 has none:
 * the host reads its smaller struct as zero-filled).
 *
 * DP_JOB_TYPE_STATELESS: `create` only checks the params: it leaves *state
 * NULL and does nothing else a job could notice (no store writes, no state
 * of its own). Then the host calls it when the job is added and again only
 * when an attempt runs on another copy of the plugin (a hot swap) than the
 * one that last checked the job's params, not before every attempt: run,
 * check and end get state NULL, destroy (if any) still ends every attempt.
 * Jobs with isolation = "process" ignore the flag. */
#define DP_JOB_TYPE_STATELESS 0x1u

/* What a plugin is. Returned by the entry point; must stay valid until the
 * plugin is unloaded (a static const object is the usual choice). */
typedef struct dp_plugin_desc {
    uint32_t struct_size; /* sizeof(dp_plugin_desc) */
    uint16_t abi_major;   /* DP_PLUGIN_ABI_MAJOR */
    uint16_t abi_minor;   /* DP_PLUGIN_ABI_MINOR */
    /* The plugin's name, the PLUGIN of "PLUGIN.TYPE": letters, digits, '_'
     * and '-'. It must equal the NAME the host loads it as (the file NAME.so,
     * or the key of an explicit path), so a job's type always names the
     * plugin that implements it. Job type names follow the same rule. */
    const char *name;
    const char *version; /* the plugin's own version, e.g. "1.2.0" (required) */
    const char *description;
    const dp_job_type *const *job_types; /* NULL-terminated */
    /* Optional: 0 on success; otherwise write a message into err. Nothing is
     * registered from a plugin whose init failed (and fini is not called).
     * Each loaded copy (hot swap) has its own globals and its own init. */
    int (*init)(char *err, size_t errlen);
    /* Optional: called once before unloading, after the last job using this
     * copy has ended. */
    void (*fini)(void);
} dp_plugin_desc;

/* The one symbol a plugin exports. Returns NULL only if it cannot work with
 * this host (e.g. host->abi_minor too old for a function it needs). */
typedef const dp_plugin_desc *(*dp_plugin_entry_fn)(const dp_host_api *host);

#ifdef __cplusplus
}
#endif

#endif /* DAGGERPOOL_PLUGIN_H */
