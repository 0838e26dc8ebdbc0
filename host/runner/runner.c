/*
 * runner.c - daggerpool-job-runner: runs one attempt of one plugin job in
 * its own process, for isolation = "process" (host/src/isolate.c starts it).
 *
 * Not a command for people: it speaks the wire protocol of isolate.h on fd 3
 * (control) and fd 4 (cancel), loads the plugin from fd 5 (the host's
 * private copy of the version the job pinned) or from its path, applies the
 * job's limits, calls create, then run/check as asked, then destroy, and
 * exits. It owns no threads: the plugin's calls run on the main thread,
 * exactly as they would on a host worker.
 *
 * The host API it hands the plugin mirrors the host's: logging and errors
 * go back over the control socket; is_cancelled, sleep_ms and cancel_fd
 * watch the cancel socket and the deadline the host sent with the call; the
 * store is the host's, reached by request and reply.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daggerpool/daggerpool.h"
#include "daggerpool/plugin.h"
#include "isolate.h"
#include "params.h"

/* In sanitizer builds a plugin's crash must stay a crash: the runtime would
 * otherwise catch SIGSEGV, SIGBUS, SIGFPE and SIGILL, print its report and
 * exit(1), and the host could only say "exited with status 1". Findings in
 * the runner's own code are still reported and still fail the job. */
#define DP_RUNNER_SANITIZER_OPTIONS \
    "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0"
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

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void send_out(void)
{
    if (host_gone || !dp__iso_end(&out) ||
        dp__iso_send_all(DP_ISOLATE_FD_CTL, out.data, out.len) != 0)
        host_gone = true;
}

/* ---- the host API, child side ------------------------------------------- */

static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return dp__isolate_cap_message(s);
}

static void api_log(dp_plugin_ctx *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
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
    if (ctx && ctx->deadline_ns && now_ns() >= ctx->deadline_ns)
        return 1;
    return cancel_readable(0);
}

static int64_t api_remaining_ms(dp_plugin_ctx *ctx)
{
    if (!ctx || !ctx->deadline_ns)
        return -1;
    uint64_t now = now_ns();
    return now >= ctx->deadline_ns ? 0 : (int64_t)((ctx->deadline_ns - now) / 1000000u);
}

static int api_sleep_ms(dp_plugin_ctx *ctx, uint64_t ms)
{
    uint64_t end = now_ns() + ms * 1000000u;
    for (;;) {
        uint64_t now = now_ns();
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

static int api_params_check_known(dp_plugin_ctx *ctx, const dp_params *p,
                                  const char *const *known)
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
    if (host_gone || dp__iso_recv_frame(DP_ISOLATE_FD_CTL, &frame, &type) != 0 ||
        type != DP_ISO_STORE_REPLY) {
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

static int api_store_get(dp_plugin_ctx *ctx, const char *key, void *buf, size_t cap,
                         size_t *len)
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
    ctx->deadline_ns = remaining_ms < 0 ? 0 : now_ns() + (uint64_t)remaining_ms * 1000000u;
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
    while (recv(DP_ISOLATE_FD_CANCEL, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1 &&
           b != (unsigned char)(seq & 0xffu))
        (void)recv(DP_ISOLATE_FD_CANCEL, &b, 1, MSG_DONTWAIT);
}

int main(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], DP_ISOLATE_RUNNER_ARG) != 0) {
        fprintf(stderr,
                "daggerpool-job-runner: runs one isolated plugin job for the daggerpool host "
                "(isolation = \"process\"); it is started by the host, not by hand\n");
        return 2;
    }
    /* No core files from plugins that crash: the host reports the signal. */
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);

    unsigned t;
    if (dp__iso_recv_frame(DP_ISOLATE_FD_CTL, &frame, &t) != 0 || t != DP_ISO_INIT)
        return 2;
    dp_iso_reader_t r = {frame.data + 1, frame.len - 1, false};
    dp_plugin_ctx ctx = {0};
    ctx.attempt = dp__iso_get_u32(&r);
    int64_t remaining = (int64_t)dp__iso_get_u64(&r);
    uint64_t cpu_ms = dp__iso_get_u64(&r), memory = dp__iso_get_u64(&r),
             open_files = dp__iso_get_u64(&r);
    bool has_fd = dp__iso_get_u8(&r) != 0;
    const char *pname = dp__iso_get_str(&r), *path = dp__iso_get_str(&r),
               *tname = dp__iso_get_str(&r), *jname = dp__iso_get_str(&r);
    params = r.bad ? NULL : dp__iso_get_params(&r);
    if (!params || !pname || !path || !tname || !jname)
        return 2;
    /* The strings point into `frame`, which the next read reuses. */
    char *plugin_name = strdup(pname), *plugin_path = strdup(path), *type_name = strdup(tname);
    ctx.job_name = strdup(jname);
    if (!plugin_name || !plugin_path || !type_name || !ctx.job_name)
        return 2;
    set_deadline(&ctx, remaining);

    if (cpu_ms && set_limit(RLIMIT_CPU, (cpu_ms + 999) / 1000, 1) != 0) {
        refuse(&ctx, "cannot set the cpu limit (%llu ms): %s", (unsigned long long)cpu_ms,
               strerror(errno));
        return 0;
    }
    if (open_files && set_limit(RLIMIT_NOFILE, open_files, 0) != 0) {
        refuse(&ctx, "cannot set the open_files limit (%llu): %s",
               (unsigned long long)open_files, strerror(errno));
        return 0;
    }

    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", DP_ISOLATE_FD_PLUGIN);
    void *h = dlopen(has_fd ? fdpath : plugin_path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        refuse(&ctx, "plugin '%s' (%s) cannot be loaded in the job runner: %s", plugin_name,
               plugin_path, e ? e : "dlopen failed");
        return 0;
    }
    /* The address-space limit comes after loading: the plugin and its
     * libraries are mapped, what follows is the plugin's own use. */
    if (memory && set_limit(RLIMIT_AS, memory, 0) != 0) {
        refuse(&ctx, "cannot set the memory limit (%llu bytes): %s", (unsigned long long)memory,
               strerror(errno));
        return 0;
    }
    dp_plugin_entry_fn entry = (dp_plugin_entry_fn)(uintptr_t)dlsym(h, DP_PLUGIN_ENTRY_NAME);
    const dp_plugin_desc *desc = entry ? entry(&api) : NULL;
    if (!desc || desc->abi_major != DP_PLUGIN_ABI_MAJOR) {
        refuse(&ctx, "plugin '%s' (%s) did not give a usable descriptor in the job runner",
               plugin_name, plugin_path);
        return 0;
    }
    if (desc->init) {
        char err[1024] = "";
        if (desc->init(err, sizeof err) != 0) {
            refuse(&ctx, "plugin '%s' failed to initialise in the job runner: %s", plugin_name,
                   err[0] ? err : "no message");
            return 0;
        }
    }
    bool found = false;
    for (size_t i = 0; desc->job_types && desc->job_types[i] && i < 1024; i++) {
        const dp_job_type *jt = desc->job_types[i];
        if (jt->name && strcmp(jt->name, type_name) == 0) {
            size_t n = jt->struct_size < sizeof type ? jt->struct_size : sizeof type;
            memset(&type, 0, sizeof type);
            memcpy(&type, jt, n);
            found = true;
            break;
        }
    }
    if (!found) {
        refuse(&ctx, "plugin '%s' has no job type '%s' in the job runner", plugin_name, type_name);
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

    for (;;) {
        if (dp__iso_recv_frame(DP_ISOLATE_FD_CTL, &frame, &t) != 0)
            _exit(0); /* the host is gone: nothing to report to */
        r = (dp_iso_reader_t){frame.data + 1, frame.len - 1, false};
        if (t == DP_ISO_END) {
            /* ABI 1.1's end hook, told how the attempt ended: a cut attempt
             * reads as cancelled (deadline 1 has passed). */
            uint8_t how = dp__iso_get_u8(&r);
            if (type.end && how != DP_ISO_END_QUIET) {
                ctx.deadline_ns = how == DP_ISO_END_CUT ? 1 : 0;
                if (how == DP_ISO_END_DONE) {
                    /* Cancel bytes left from the calls must not read as a
                     * cut: the host said how the attempt ended. */
                    unsigned char b;
                    while (recv(DP_ISOLATE_FD_CANCEL, &b, 1, MSG_DONTWAIT) == 1) {
                    }
                }
                type.end(&ctx, state);
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
        ctx.attempt = dp__iso_get_u32(&r);
        set_deadline(&ctx, (int64_t)dp__iso_get_u64(&r));
        drain_cancel(seq);
        dp_plugin_result (*fn)(dp_plugin_ctx *, void *) = check ? type.check : type.run;
        if (!fn) {
            refuse(&ctx, "plugin '%s' type '%s' has no %s", plugin_name, type_name,
                   check ? "check" : "run");
            continue;
        }
        dp__params_clear_error(params);
        int result = (int)fn(&ctx, state);
        send_result(result, &ctx);
        if (host_gone)
            _exit(0);
    }
}
