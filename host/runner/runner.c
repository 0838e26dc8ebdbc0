/*
 * runner.c - daggerpool-job-runner: runs one attempt of one plugin job in
 * its own process, for isolation = "process" (host/src/isolate.c starts it).
 *
 * Not a command for people. The process the host starts (or the warm
 * runner, warm.c, copies) is a supervisor (dp__runner_supervise, at the end
 * of this file) that runs no plugin code: it forks the
 * worker, and once the worker is gone it kills whatever the plugin started
 * and exits as the worker did. The worker (worker_main) speaks the wire
 * protocol of isolate.h on fd 3 (control) and fd 4 (cancel), loads the
 * plugin from fd 5 (the host's private copy of the version the job pinned;
 * never from its path, which may hold another version by now), applies the
 * job's limits, calls create, then run/check as asked, then destroy, and
 * exits. It owns no threads: the plugin's calls run on the main thread,
 * exactly as they would on a host worker.
 *
 * The host API it hands the plugin mirrors the host's: logging and errors
 * go back over the control socket; is_cancelled, sleep_ms and cancel_fd
 * watch the cancel socket and the deadline the host sent with the call; the
 * store is the host's, reached by request and reply.
 *
 * In checker mode (DP_ISO_MODE_CHECKER) the worker checks the params of
 * many jobs instead: one create and destroy per CHECK frame.
 *
 * It links only daggerpool_runner_support (host/CMakeLists.txt): the wire
 * (isolate_wire.h), params and their getters, durations and util.h's
 * helpers; none of the engine (tests/isolation checks with nm).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daggerpool/daggerpool.h"
#include "daggerpool/plugin.h"
#include "isolate_wire.h"
#include "params.h"
#include "runner.h"
#include "util.h"

/* In sanitizer builds a plugin's crash must stay a crash: the runtime would
 * otherwise catch SIGSEGV, SIGBUS, SIGFPE and SIGILL, print its report and
 * exit(1), and the host could only say "exited with status 1". Findings in
 * the runner's own code are still reported and still fail the job. */
#define DP_RUNNER_SANITIZER_OPTIONS "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0"
__attribute__((visibility("default"), used)) const char *__asan_default_options(void);
__attribute__((visibility("default"), used)) const char *__asan_default_options(void)
{
    return DP_RUNNER_SANITIZER_OPTIONS;
}
__attribute__((visibility("default"), used)) const char *__tsan_default_options(void);
__attribute__((visibility("default"), used)) const char *__tsan_default_options(void)
{
    return DP_RUNNER_SANITIZER_OPTIONS;
}

struct dp_plugin_ctx {
    const char *job_name;
    unsigned attempt;
    uint64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
    char *error;
    unsigned error_flags;
};

static dp_iso_buf_t out;   /* frames to the host */
static dp_iso_buf_t frame; /* the frame being read */
static bool host_gone;     /* the control socket failed: just finish */

static void send_out(void)
{
    if (host_gone || !dp__iso_end(&out) || dp__iso_send_all(DP_ISOLATE_FD_CTL, out.data, out.len) != 0)
        host_gone = true;
}

/* ---- the host API, child side ------------------------------------------- */

static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vformat(const char *fmt, va_list ap)
{
    return dp__isolate_cap_message(dp__vasprintf(fmt, ap));
}

static void api_log(dp_plugin_ctx *ctx, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void api_log(dp_plugin_ctx *ctx, int level, const char *fmt, ...)
{
    if (!ctx || !fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    if (!msg)
        return;
    dp__iso_begin(&out, DP_ISO_LOG);
    dp__iso_put_u32(&out, (uint32_t)level);
    dp__iso_put_str(&out, msg);
    send_out();
    free(msg);
}

static void api_set_error(dp_plugin_ctx *ctx, unsigned flags, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void api_set_error(dp_plugin_ctx *ctx, unsigned flags, const char *fmt, ...)
{
    if (!ctx || !fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    free(ctx->error);
    ctx->error = msg ? msg : strdup("(out of memory formatting the error)");
    ctx->error_flags = flags;
}

static const char *api_job_name(dp_plugin_ctx *ctx)
{
    return ctx ? ctx->job_name : NULL;
}

static unsigned api_attempt(dp_plugin_ctx *ctx)
{
    return ctx ? ctx->attempt : 0;
}

static bool cancel_readable(int timeout_ms)
{
    struct pollfd p = {.fd = DP_ISOLATE_FD_CANCEL, .events = POLLIN};
    int r;
    while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    return r > 0;
}

static int api_is_cancelled(dp_plugin_ctx *ctx)
{
    if (ctx && ctx->deadline_ns && dp__now_ns() >= ctx->deadline_ns)
        return 1;
    return cancel_readable(0);
}

static int64_t api_remaining_ms(dp_plugin_ctx *ctx)
{
    if (!ctx || !ctx->deadline_ns)
        return -1;
    uint64_t now = dp__now_ns();
    return now >= ctx->deadline_ns ? 0 : (int64_t)((ctx->deadline_ns - now) / 1000000u);
}

static int api_sleep_ms(dp_plugin_ctx *ctx, uint64_t ms)
{
    uint64_t end = dp__now_ns() + ms * 1000000u;
    for (;;) {
        uint64_t now = dp__now_ns();
        if (ctx && ctx->deadline_ns && now >= ctx->deadline_ns && now < end)
            return -1;
        if (now >= end)
            return 0;
        uint64_t until = end;
        if (ctx && ctx->deadline_ns && ctx->deadline_ns < until)
            until = ctx->deadline_ns;
        uint64_t wait = (until - now + 999999u) / 1000000u;
        if (cancel_readable(wait > 60000 ? 60000 : (int)wait))
            return -1;
    }
}

static int api_cancel_fd(dp_plugin_ctx *ctx)
{
    (void)ctx;
    return DP_ISOLATE_FD_CANCEL;
}

static int api_params_check_known(dp_plugin_ctx *ctx, const dp_params *p, const char *const *known)
{
    char buf[1024];
    if (dp__params_check_known(p, known, buf, sizeof(buf)) == 0)
        return 0;
    if (ctx) {
        free(ctx->error);
        ctx->error = strdup(buf);
        ctx->error_flags = DP_PLUGIN_ERROR_PERMANENT;
    }
    return -1;
}

/* Sends a store request and waits for the reply (the host answers before
 * anything else: it sends nothing else while a call is out). */
static int store_request(dp_iso_reader_t *reply)
{
    send_out();
    unsigned type;
    if (host_gone || dp__iso_recv_frame(DP_ISOLATE_FD_CTL, &frame, &type) != 0 || type != DP_ISO_STORE_REPLY) {
        host_gone = true;
        return -1;
    }
    *reply = (dp_iso_reader_t){frame.data + 1, frame.len - 1, false};
    return 0;
}

static int api_store_set(dp_plugin_ctx *ctx, const char *key, const void *data, size_t len)
{
    (void)ctx;
    if (!key || (len && !data))
        return -1;
    dp__iso_begin(&out, DP_ISO_STORE_SET);
    dp__iso_put_str(&out, key);
    dp__iso_put_bytes(&out, data, len);
    dp_iso_reader_t r;
    if (store_request(&r) != 0)
        return -1;
    return (int32_t)dp__iso_get_u32(&r);
}

static int api_store_get(dp_plugin_ctx *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    (void)ctx;
    if (!key)
        return -1;
    dp__iso_begin(&out, DP_ISO_STORE_GET);
    dp__iso_put_str(&out, key);
    dp__iso_put_u64(&out, buf ? cap : 0);
    dp_iso_reader_t r;
    if (store_request(&r) != 0)
        return -1;
    int rc = (int32_t)dp__iso_get_u32(&r);
    uint64_t full = dp__iso_get_u64(&r);
    size_t got;
    const void *data = dp__iso_get_bytes(&r, &got);
    if (r.bad)
        return -1;
    if (rc == 0) {
        if (len)
            *len = (size_t)full;
        if (buf && got)
            memcpy(buf, data, got < cap ? got : cap);
    }
    return rc;
}

static int api_store_delete(dp_plugin_ctx *ctx, const char *key)
{
    (void)ctx;
    if (!key)
        return -1;
    dp__iso_begin(&out, DP_ISO_STORE_DEL);
    dp__iso_put_str(&out, key);
    dp_iso_reader_t r;
    if (store_request(&r) != 0)
        return -1;
    return (int32_t)dp__iso_get_u32(&r);
}

/* Forwarded at once (no reply): the host applies it to the call under way. */
static void api_retry_after(dp_plugin_ctx *ctx, uint64_t ms)
{
    (void)ctx;
    dp__iso_begin(&out, DP_ISO_RETRY_AFTER);
    dp__iso_put_u64(&out, ms);
    send_out();
}

static const dp_host_api api = {
    .struct_size = sizeof(dp_host_api),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .host_version = DP_VERSION_STRING,
    .log = api_log,
    .set_error = api_set_error,
    .job_name = api_job_name,
    .attempt = api_attempt,
    .is_cancelled = api_is_cancelled,
    .remaining_ms = api_remaining_ms,
    .sleep_ms = api_sleep_ms,
    .cancel_fd = api_cancel_fd,
    DP__HOST_API_PARAM_GETTERS,
    .params_check_known = api_params_check_known,
    .store_set = api_store_set,
    .store_get = api_store_get,
    .store_delete = api_store_delete,
    .retry_after = api_retry_after,
};

/* ---- the attempt -------------------------------------------------------- */

static dp_params_t *params;
static dp_job_type type;

/* Sends a RESULT with the call's message: set_error's, else a failed param
 * getter's (permanent: params do not change), as the host does in-process. */
static void send_result(int result, dp_plugin_ctx *ctx)
{
    const char *msg = ctx->error;
    unsigned flags = ctx->error_flags;
    if (!msg && result != DP_PLUGIN_READY && result != DP_PLUGIN_NOT_READY) {
        msg = dp__params_error(params);
        if (msg)
            flags = DP_PLUGIN_ERROR_PERMANENT;
    }
    dp__iso_begin(&out, DP_ISO_RESULT);
    dp__iso_put_u32(&out, (uint32_t)result);
    dp__iso_put_u32(&out, flags);
    dp__iso_put_u8(&out, msg != NULL);
    dp__iso_put_str(&out, msg);
    send_out();
    free(ctx->error);
    ctx->error = NULL;
    ctx->error_flags = 0;
}

/* A message of the runner itself (not the plugin's): the job fails with it. */
static void refuse(dp_plugin_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(dp_plugin_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(ctx->error);
    ctx->error = vformat(fmt, ap);
    va_end(ap);
    ctx->error_flags = DP_PLUGIN_ERROR_PERMANENT;
    send_result(DP_PLUGIN_ERROR, ctx);
}

static int set_limit(int resource, uint64_t value, uint64_t hard_extra)
{
    struct rlimit rl = {.rlim_cur = (rlim_t)value, .rlim_max = (rlim_t)(value + hard_extra)};
    struct rlimit old;
    if (getrlimit(resource, &old) == 0 && old.rlim_max != RLIM_INFINITY) {
        if (rl.rlim_max > old.rlim_max)
            rl.rlim_max = old.rlim_max;
        if (rl.rlim_cur > rl.rlim_max)
            rl.rlim_cur = rl.rlim_max;
    }
    return setrlimit(resource, &rl);
}

static void set_deadline(dp_plugin_ctx *ctx, int64_t remaining_ms)
{
    ctx->deadline_ns = remaining_ms < 0 ? 0 : dp__now_ns() + (uint64_t)remaining_ms * 1000000u;
    if (remaining_ms >= 0 && ctx->deadline_ns == 0)
        ctx->deadline_ns = 1;
}

/* A cancel byte left over from an earlier call (sent as that call ended)
 * must not cancel this one: the host sends the low byte of the call's
 * sequence number, so bytes of earlier calls, which come first, are dropped
 * and one for this call stays (readable: cancelled). */
static void drain_cancel(unsigned seq)
{
    unsigned char b;
    while (recv(DP_ISOLATE_FD_CANCEL, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1 && b != (unsigned char)(seq & 0xffu))
        (void)recv(DP_ISOLATE_FD_CANCEL, &b, 1, MSG_DONTWAIT);
}

/* What INIT says about the attempt besides the context's fields (the
 * strings are copies: the frame they came in is reused). */
typedef struct init {
    uint64_t cpu_ms, memory, open_files;
    bool has_fd;
    uint8_t mode; /* DP_ISO_MODE_ATTEMPT or DP_ISO_MODE_CHECKER */
    char *plugin, *path, *type;
} init_t;

/* Reads INIT into ctx, in and params. 0, or the worker's exit code (2)
 * when the host sent no valid INIT. */
static int read_init(dp_plugin_ctx *ctx, init_t *in)
{
    unsigned t;
    if (dp__iso_recv_frame(DP_ISOLATE_FD_CTL, &frame, &t) != 0 || t != DP_ISO_INIT)
        return 2;
    dp_iso_reader_t r = {frame.data + 1, frame.len - 1, false};
    ctx->attempt = dp__iso_get_u32(&r);
    int64_t remaining = (int64_t)dp__iso_get_u64(&r);
    in->cpu_ms = dp__iso_get_u64(&r);
    in->memory = dp__iso_get_u64(&r);
    in->open_files = dp__iso_get_u64(&r);
    in->has_fd = dp__iso_get_u8(&r) != 0;
    in->mode = dp__iso_get_u8(&r);
    const char *pname = dp__iso_get_str(&r), *path = dp__iso_get_str(&r), *tname = dp__iso_get_str(&r),
               *jname = dp__iso_get_str(&r);
    params = r.bad ? NULL : dp__iso_get_params(&r);
    if (!params || !pname || !path || !tname || !jname)
        return 2;
    in->plugin = strdup(pname);
    in->path = strdup(path);
    in->type = strdup(tname);
    ctx->job_name = strdup(jname);
    if (!in->plugin || !in->path || !in->type || !ctx->job_name)
        return 2;
    set_deadline(ctx, remaining);
    return 0;
}

#define DP__RUNNER_STR_(x) #x
#define DP__RUNNER_STR(x) DP__RUNNER_STR_(x)

static const dp_plugin_desc *desc; /* the loaded plugin's */

/* The job's limits that come before loading the plugin (cpu, open
 * files). false once it has refused the attempt. */
static bool limits_before_load(dp_plugin_ctx *ctx, const init_t *in)
{
    if (in->cpu_ms && set_limit(RLIMIT_CPU, (in->cpu_ms + 999) / 1000, 1) != 0) {
        refuse(ctx, "cannot set the cpu limit (%llu ms): %s", (unsigned long long)in->cpu_ms, strerror(errno));
        return false;
    }
    if (in->open_files && set_limit(RLIMIT_NOFILE, in->open_files, 0) != 0) {
        refuse(ctx, "cannot set the open_files limit (%llu): %s", (unsigned long long)in->open_files, strerror(errno));
        return false;
    }
    return true;
}

/* The address-space limit comes after loading: the plugin and its
 * libraries are mapped, what follows is the plugin's own use. */
static bool limit_after_load(dp_plugin_ctx *ctx, const init_t *in)
{
    if (in->memory && set_limit(RLIMIT_AS, in->memory, 0) != 0) {
        refuse(ctx, "cannot set the memory limit (%llu bytes): %s", (unsigned long long)in->memory, strerror(errno));
        return false;
    }
    return true;
}

/* Calls the loaded plugin's entry point and init (into `desc`): 0, 1 if it
 * gave no usable descriptor, 2 if init failed (its message in err, maybe
 * empty). */
static int start_plugin(void *h, char *err, size_t errlen)
{
    dp_plugin_entry_fn entry = (dp_plugin_entry_fn)(uintptr_t)dlsym(h, DP_PLUGIN_ENTRY_NAME);
    desc = entry ? entry(&api) : NULL;
    if (!desc || desc->abi_major != DP_PLUGIN_ABI_MAJOR)
        return 1;
    err[0] = '\0';
    if (desc->init && desc->init(err, errlen) != 0)
        return 2;
    return 0;
}

/* A constant: no formatting code to fault in for each copy. */
static const char fdpath[] = "/proc/self/fd/" DP__RUNNER_STR(DP_ISOLATE_FD_PLUGIN);

/* Applies the job's limits, loads the pinned copy from fd 5 and calls its
 * entry point and init (into `desc`). false once it has refused the attempt
 * (the job fails with the reason). */
static bool load_plugin(dp_plugin_ctx *ctx, const init_t *in)
{
    if (!limits_before_load(ctx, in))
        return false;

    /* Only the copy the attempt pinned may run: the file at its path may
     * have been replaced since (even by a version the host refused). */
    if (!in->has_fd) {
        refuse(ctx,
               "plugin '%s' (%s): the host passed no private copy of the version the job "
               "pinned, and the runner does not load the file from disk (it may have changed); "
               "this is a bug in the host",
               in->plugin, in->path);
        return false;
    }
    void *h = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        refuse(ctx, "plugin '%s' (%s) cannot be loaded in the job runner: %s", in->plugin, in->path,
               e ? e : "dlopen failed");
        return false;
    }
    if (!limit_after_load(ctx, in))
        return false;
    char err[1024];
    int why = start_plugin(h, err, sizeof err);
    if (why == 1) {
        refuse(ctx, "plugin '%s' (%s) did not give a usable descriptor in the job runner", in->plugin, in->path);
        return false;
    }
    if (why == 2) {
        refuse(ctx, "plugin '%s' failed to initialise in the job runner: %s", in->plugin, err[0] ? err : "no message");
        return false;
    }
    return true;
}

bool dp__runner_preload(void)
{
    void *h = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
    char err[1024];
    return h && start_plugin(h, err, sizeof err) == 0;
}

/* Finds job type `name` of the loaded plugin (into `type`). */
static bool find_type(const char *name)
{
    for (size_t i = 0; desc->job_types && desc->job_types[i] && i < 1024; i++) {
        const dp_job_type *jt = desc->job_types[i];
        if (jt->name && strcmp(jt->name, name) == 0) {
            size_t n = jt->struct_size < sizeof type ? jt->struct_size : sizeof type;
            memset(&type, 0, sizeof type);
            memcpy(&type, jt, n);
            return true;
        }
    }
    return false;
}

/* load_plugin, then the attempt's job type. */
static bool load_type(dp_plugin_ctx *ctx, const init_t *in)
{
    if (!load_plugin(ctx, in))
        return false;
    if (find_type(in->type))
        return true;
    refuse(ctx, "plugin '%s' has no job type '%s' in the job runner", in->plugin, in->type);
    return false;
}

/* Serves the host's calls on the instance until END (or the host is
 * gone); exits the process. */
static void serve_calls(dp_plugin_ctx *ctx, const init_t *in, void *state)
{
    for (;;) {
        unsigned t;
        if (dp__iso_recv_frame(DP_ISOLATE_FD_CTL, &frame, &t) != 0)
            _exit(0); /* the host is gone: nothing to report to */
        dp_iso_reader_t r = {frame.data + 1, frame.len - 1, false};
        if (t == DP_ISO_END) {
            /* ABI 1.1's end hook, told how the attempt ended: a cut attempt
             * reads as cancelled (deadline 1 has passed). */
            uint8_t how = dp__iso_get_u8(&r);
            if (type.end && how != DP_ISO_END_QUIET) {
                ctx->deadline_ns = how == DP_ISO_END_CUT ? 1 : 0;
                if (how == DP_ISO_END_DONE) {
                    /* Cancel bytes left from the calls must not read as a
                     * cut: the host said how the attempt ended. */
                    unsigned char b;
                    while (recv(DP_ISOLATE_FD_CANCEL, &b, 1, MSG_DONTWAIT) == 1) {
                    }
                }
                type.end(ctx, state);
            }
            if (type.destroy)
                type.destroy(state);
            /* _exit: what the plugin leaked goes with the process, and no
             * plugin or library destructor runs after the instance ended. */
            _exit(0);
        }
        if (t != DP_ISO_CALL)
            _exit(2);
        bool check = dp__iso_get_u8(&r) != 0;
        unsigned seq = dp__iso_get_u32(&r);
        ctx->attempt = dp__iso_get_u32(&r);
        set_deadline(ctx, (int64_t)dp__iso_get_u64(&r));
        drain_cancel(seq);
        dp_plugin_result (*fn)(dp_plugin_ctx *, void *) = check ? type.check : type.run;
        if (!fn) {
            refuse(ctx, "plugin '%s' type '%s' has no %s", in->plugin, in->type, check ? "check" : "run");
            continue;
        }
        dp__params_clear_error(params);
        int result = (int)fn(ctx, state);
        send_result(result, ctx);
        if (host_gone)
            _exit(0);
        if (!check && !type.end && !type.check) {
            /* After run the host only ends the instance, or probes it with
             * check (plugin_job.c: a run opens every instance), and without
             * an end hook how it ends changes nothing: for a type with
             * neither, destroy and go now rather than wait for the END
             * frame, one hand-off less per attempt. (The host still sees
             * a crash in destroy: it reaps the child as it ends it.) */
            if (type.destroy)
                type.destroy(state);
            _exit(0);
        }
    }
}

/* A checker (DP_ISO_MODE_CHECKER): the plugin is loaded; each CHECK frame
 * (str type, str job, params) is a job's params check, create then destroy
 * as an attempt would, answered with a RESULT; until END or the host is
 * gone. One process checks the params of many jobs. */
static void serve_checks(const init_t *in)
{
    for (;;) {
        unsigned t;
        if (dp__iso_recv_frame(DP_ISOLATE_FD_CTL, &frame, &t) != 0 || t == DP_ISO_END)
            _exit(0);
        if (t != DP_ISO_CHECK)
            _exit(2);
        dp_iso_reader_t r = {frame.data + 1, frame.len - 1, false};
        const char *tname = dp__iso_get_str(&r), *jname = dp__iso_get_str(&r);
        dp_params_t *p = r.bad ? NULL : dp__iso_get_params(&r);
        if (!tname || !jname || !p)
            _exit(2);
        /* The frame is reused by store requests: own the names. */
        char *job = strdup(jname);
        dp_plugin_ctx ctx = {.job_name = job, .attempt = 0};
        if (!job) {
            refuse(&ctx, "out of memory in the job runner");
        } else if (!find_type(tname)) {
            refuse(&ctx, "plugin '%s' has no job type '%s' in the job runner", in->plugin, tname);
        } else {
            dp_params_free(params);
            params = p;
            p = NULL;
            void *state = NULL;
            int created = 0;
            if (type.create) {
                dp__params_clear_error(params);
                created = type.create(&ctx, params, &state);
            }
            if (created == 0 && type.destroy)
                type.destroy(state);
            send_result(created, &ctx);
        }
        dp_params_free(p);
        free(job);
        if (host_gone)
            _exit(0);
    }
}

/* The attempt itself: the protocol on fd 3 and 4, the plugin from fd 5
 * (or loaded already: a zygote's worker, zygote.c). Runs in the worker
 * process (see main). */
int dp__runner_worker_main(bool preloaded)
{
    dp_plugin_ctx ctx = {0};
    init_t in = {0};
    int rc = read_init(&ctx, &in);
    if (rc != 0)
        return rc;
    if (preloaded) {
        /* The zygote loaded this version (its entry point and init called)
         * before it forked us; the job's limits are ours alone. */
        if (in.mode != DP_ISO_MODE_ATTEMPT || !limits_before_load(&ctx, &in) || !limit_after_load(&ctx, &in))
            return in.mode != DP_ISO_MODE_ATTEMPT ? 2 : 0;
        if (!find_type(in.type)) {
            refuse(&ctx, "plugin '%s' has no job type '%s' in the job runner", in.plugin, in.type);
            return 0;
        }
    } else if (in.mode == DP_ISO_MODE_CHECKER) {
        if (!load_plugin(&ctx, &in))
            return 0;
        send_result(0, &ctx); /* loaded: ready for checks */
        if (host_gone)
            return 0;
        serve_checks(&in);
    } else if (!load_type(&ctx, &in)) {
        return 0;
    }

    void *state = NULL;
    int created = 0;
    if (type.create) {
        dp__params_clear_error(params);
        created = type.create(&ctx, params, &state);
    }
    send_result(created, &ctx);
    if (created != 0 || host_gone)
        _exit(0);
    serve_calls(&ctx, &in, state);
    return 0;
}

/* ---- the supervisor ------------------------------------------------------
 * The process the host starts runs no plugin code. It forks the worker
 * (worker_main) and, being a child subreaper, inherits every process the
 * plugin starts once that process's parent is gone, whatever process group
 * or session it moved to. When the worker has exited, or on
 * DP_ISOLATE_SIG_KILL_ALL (the host's last step of a cancellation, its
 * dp__isolate_kill_all, or its death: the parent-death signal), it SIGKILLs
 * every descendant, reaps them, and exits as the worker did: the host sees
 * the worker's status, and the supervisor's exit means the attempt and all
 * it started are over. */

typedef struct pid_list {
    pid_t *v;
    size_t n, cap;
} pid_list_t;

static bool pids_push(pid_list_t *l, long pid)
{
    if (pid <= 0)
        return true;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        pid_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (pid_t)pid;
    return true;
}

/* Reads a whole small file; NULL if it cannot be opened or read. */
static char *slurp(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf) {
        if (cap - len < 2) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (n == 0) {
            buf[len] = '\0';
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    return buf;
}

/* This process's children (living or not yet reaped) into l. False if
 * they cannot be listed. The supervisor is single-threaded, so its
 * children are those of its one task; without CONFIG_PROC_CHILDREN, a scan
 * of /proc for the processes whose parent it is. */
static bool list_children(pid_list_t *l)
{
    l->n = 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)getpid());
    char *text = slurp(path);
    if (text) {
        bool ok = true;
        for (char *p = text, *end; ok && *p; p = end) {
            long pid = strtol(p, &end, 10);
            if (end == p)
                break;
            ok = pids_push(l, pid);
        }
        free(text);
        return ok;
    }
    DIR *d = opendir("/proc");
    if (!d)
        return false;
    pid_t self = getpid();
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char stat_path[300], buf[512];
        snprintf(stat_path, sizeof stat_path, "/proc/%s/stat", e->d_name);
        int fd = open(stat_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        /* pid (comm) state ppid ...: comm may hold anything, even ')'. */
        char *rp = strrchr(buf, ')');
        long ppid = 0;
        if (rp && sscanf(rp + 1, " %*c %ld", &ppid) == 1 && ppid == self)
            ok = pids_push(l, strtol(e->d_name, NULL, 10));
    }
    closedir(d);
    return ok;
}

static pid_t worker_pid;
static int worker_status;
static bool worker_done;

void dp__runner_watch(pid_t worker)
{
    worker_pid = worker;
    worker_status = 0;
    worker_done = false;
}

bool dp__runner_worker_done(int *status)
{
    if (worker_done && status)
        *status = worker_status;
    return worker_done;
}

static void note_reaped(pid_t pid, int status)
{
    if (pid == worker_pid) {
        worker_status = status;
        worker_done = true;
    }
}

/* Reaps what has exited, without waiting. */
void dp__runner_reap_exited(void)
{
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0)
        note_reaped(p, st);
}

/* SIGKILLs every descendant and reaps it, until there are none: a killed
 * process's children come to us (we are their subreaper) and are killed in
 * the next round. */
void dp__runner_kill_descendants(void)
{
    pid_list_t l = {0};
    unsigned empty_rounds = 0;
    for (;;) {
        /* No child at all means no descendant either: each one whose
         * parent is gone was reparented to us (the subreaper) before that
         * parent could be reaped, and one whose parent lives is below a
         * child of ours. The usual end of an attempt (the worker reaped,
         * nothing else started) stops here without reading /proc. */
        int st0;
        pid_t p0 = waitpid(-1, &st0, WNOHANG);
        if (p0 > 0) {
            note_reaped(p0, st0);
            continue;
        }
        if (p0 < 0 && errno == ECHILD)
            break;
        if (!list_children(&l)) {
            /* Cannot list (no /proc, no memory): the worker at least. */
            if (!worker_done)
                kill(worker_pid, SIGKILL);
            int st;
            pid_t p;
            while ((p = waitpid(-1, &st, 0)) > 0 || (p < 0 && errno == EINTR))
                if (p > 0)
                    note_reaped(p, st);
            break;
        }
        if (l.n == 0) {
            int st;
            pid_t p = waitpid(-1, &st, WNOHANG);
            if (p > 0) {
                note_reaped(p, st);
                continue;
            }
            if (p < 0 && errno != EINTR)
                break; /* ECHILD: none left */
            /* One came (a reparented orphan) after the listing: again, and
             * give it a moment should that repeat. */
            if (++empty_rounds > 3) {
                struct timespec ts = {0, 1000000L};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        empty_rounds = 0;
        for (size_t i = 0; i < l.n; i++)
            kill(l.v[i], SIGKILL);
        for (size_t i = 0; i < l.n; i++) {
            int st;
            pid_t p;
            while ((p = waitpid(l.v[i], &st, 0)) < 0 && errno == EINTR) {
            }
            if (p > 0)
                note_reaped(p, st);
        }
    }
    free(l.v);
}

/* Ends this process the way the worker ended. */
static void exit_as_worker(void) __attribute__((noreturn));
static void exit_as_worker(void)
{
    int st = worker_status;
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        signal(sig, SIG_DFL);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        sigprocmask(SIG_UNBLOCK, &one, NULL);
        /* kill, not raise: a supervisor the warm runner cloned has the warm
         * runner's thread id in its C library's thread block. */
        kill(getpid(), sig);
        _exit(128 + sig); /* a signal whose default is not to terminate */
    }
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 2);
}

/* The supervisor of one attempt, with the protocol's descriptors in place
 * (fds 3, 4, 5) and the signals of dp__isolate_runner_sigset blocked:
 * forks the worker and watches it (see above). Never returns. host_pid: the
 * process whose death ends the attempt (our parent, as the host spawned or
 * the warm runner cloned us). */
void dp__runner_supervise(pid_t host_pid, int spare)
{
    /* The host's death ends the attempt. (Strictly, the death of the host's
     * thread that is our parent: a pool worker, which outlives its attempts,
     * the thread checking params at add time, which waits for us, or the
     * warm runner's keeper, which lives as long as the host.) */
    prctl(PR_SET_PDEATHSIG, DP_ISOLATE_SIG_KILL_ALL);
    bool host_gone_early = getppid() != host_pid;
    /* Without it (Linux < 3.4), what moved out of our process group and
     * outlives its parent escapes; the group is still killed. */
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1);

    pid_t self = getpid();
    worker_pid = fork();
    if (worker_pid < 0) {
        fprintf(stderr, "daggerpool-job-runner: cannot fork the worker: %s\n", strerror(errno));
        _exit(2);
    }
    if (worker_pid == 0) {
        /* Should the supervisor be killed, so is the worker. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != self)
            _exit(2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (spare >= 0)
            dp__runner_spare_activate(spare);
        /* Nothing the plugin executes gets the runner's descriptors: a
         * background process holding the sockets would keep the attempt
         * from ending (dlopen reads fd 5 through /proc, which CLOEXEC does
         * not affect). */
        for (int fd = DP_ISOLATE_FD_CTL; fd <= DP_ISOLATE_FD_PLUGIN; fd++) {
            int flags = fcntl(fd, F_GETFD);
            if (flags >= 0)
                fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
        /* _exit, not a return from main: no destructor of the plugin's or
         * of a library runs after the attempt (and a worker of the warm
         * runner has no main to return to). */
        _exit(dp__runner_worker_main(false));
    }
    /* The worker has them; the host must see the sockets close with it
     * (and the warm runner a spare's socket). */
    if (spare >= 0)
        close(spare);
    for (int fd = DP_ISOLATE_FD_CTL; fd <= DP_ISOLATE_FD_PLUGIN; fd++)
        close(fd);
    sigset_t sup;
    dp__isolate_runner_sigset(&sup);
    if (host_gone_early)
        dp__runner_kill_descendants();

    while (!worker_done) {
        siginfo_t si;
        int sig = sigwaitinfo(&sup, &si);
        if (sig < 0)
            continue; /* EINTR */
        if (sig == SIGCHLD)
            dp__runner_reap_exited();
        else if (sig == DP_ISOLATE_SIG_KILL_ALL)
            dp__runner_kill_descendants();
        else if (si.si_pid != getppid())
            /* SIGTERM and the like sent to us alone (the host signals the
             * whole group, the worker included): pass it on. */
            kill(worker_pid, sig);
    }
    /* The attempt is over: nothing it started may outlive it. */
    dp__runner_kill_descendants();
    exit_as_worker();
}

int main(int argc, char **argv)
{
    bool warm = argc == 2 && strcmp(argv[1], DP_ISOLATE_WARM_ARG) == 0;
    if (!warm && (argc != 2 || strcmp(argv[1], DP_ISOLATE_RUNNER_ARG) != 0)) {
        fprintf(stderr, "daggerpool-job-runner: runs one isolated plugin job for the daggerpool host "
                        "(isolation = \"process\"); it is started by the host, not by hand\n");
        return 2;
    }
    /* No core files from plugins that crash: the host reports the signal. */
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);

    /* The host starts us with these blocked already; make sure. */
    sigset_t sup;
    dp__isolate_runner_sigset(&sup);
    sigprocmask(SIG_BLOCK, &sup, NULL);
    if (warm)
        dp__runner_warm_main();
    dp__runner_supervise(getppid(), -1);
}
