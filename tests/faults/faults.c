/*
 * faults.c - a test plugin whose job types misbehave on purpose, to show
 * what the host contains and how it reports it (tests/isolation).
 *
 *   faults.segv        dereferences NULL                 (param `in`)
 *   faults.abort       calls abort()                     (param `in`)
 *   faults.exit        calls exit(`status`, default 3)   (param `in`)
 *   faults.spin        loops forever, never looking at its context
 *   faults.sleep       sleeps `duration` (default 1h) with nanosleep,
 *                      ignoring cancellation and deadlines, in run or (with
 *                      in = "check") in its readiness check
 *   faults.huge_error  fails with a message of `bytes` bytes (default 10 MiB)
 *   faults.bad_status  returns `status` (default 42), not a dp_plugin_result
 *   faults.null_state  create succeeds with a NULL state; run and destroy
 *                      must cope (they do: ready)
 *   faults.leak        mallocs `bytes` (default 1 MiB) per run, never frees
 *   faults.garbage     writes junk to fd 3, then sleeps: isolated, that is
 *                      the runner's control socket, so the host sees a
 *                      malformed message (never run it in-process)
 *   faults.store       not a fault: adds 1 to the counter `key` (default
 *                      "faults.counter") in the host's store, reads it back
 *                      and logs "counter N" (store access from a child)
 *   faults.fork        starts a helper process, then does `then`: "ready"
 *                      (default), "fail", "segv" or "hang" (sleeps forever,
 *                      ignoring cancellation). The helper sleeps `sleep`
 *                      seconds (a string, default "3600"): as a plain fork
 *                      (helper = "fork", the default: it keeps every
 *                      descriptor of the process it forked from, the
 *                      runner's sockets included) or by executing
 *                      /bin/sleep `sleep` (helper = "exec": it inherits
 *                      what is not close-on-exec). `setsid` = true makes it
 *                      a daemon in its own session first, `close_fds` =
 *                      true closes every descriptor above 2 first.
 *                      Isolated only: forking the threaded host is not
 *                      something to test.
 *   faults.version     not a fault: logs "running faults VERSION" (warn) and
 *                      is ready. Built twice: faults.so is version 1.0.0,
 *                      v2/faults.so version 2.0.0 (FAULTS_VERSION), to tell
 *                      which copy of the plugin ran.
 *   faults.destroy_segv  ready, then dereferences NULL in destroy once it
 *                      has run (the add-time check's destroy passes); no
 *                      check, no end hook: isolated, its worker ends right
 *                      after run
 *   faults.pidlog      not a fault: its create appends "PID PPID N" (the
 *                      process it runs in, that one's parent, and how many
 *                      creates of the type that process has seen, this one
 *                      included: 1 in a fresh process) as a line to the
 *                      file `path`, so a test can count the processes that
 *                      checked params or ran attempts
 *
 * With FAULTS_THREAD_AT_LOAD set in its environment, the plugin's entry
 * point starts a thread that sleeps for ever (a plugin that must not be
 * forked once loaded: a zygote refuses it).
 *   faults.chaos       for soak tests: per attempt, at random, fails
 *                      (`fail`), is not ready (`not_ready`), or sleeps past
 *                      its deadline (`hang`, cooperatively), each a
 *                      probability 0..1; otherwise sleeps up to `max_sleep`
 *                      and is ready.
 *
 * `in` is "run" (default), "create" or "check": where the fault happens.
 * A fault in create also fires when the host checks the params at add time,
 * so only isolated jobs can use in = "create" and survive.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <daggerpool/plugin.h>

static const dp_host_api *host;

#ifndef FAULTS_VERSION
#define FAULTS_VERSION "1.0.0"
#endif

enum where { IN_RUN, IN_CREATE, IN_CHECK };
enum fault { F_SEGV, F_ABORT, F_EXIT };

struct crash_state {
    enum where in;
    int status;
};

static int parse_in(dp_plugin_ctx *ctx, const dp_params *params, enum where *in)
{
    const char *s = "run";
    if (host->param_string(params, "in", &s) < 0)
        return -1;
    if (strcmp(s, "run") == 0)
        *in = IN_RUN;
    else if (strcmp(s, "create") == 0)
        *in = IN_CREATE;
    else if (strcmp(s, "check") == 0)
        *in = IN_CHECK;
    else {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT,
                        "param 'in': expected \"run\", \"create\" or \"check\", found \"%s\"", s);
        return -1;
    }
    return 0;
}

/* volatile so the compiler keeps the faulting load. */
static int *volatile null_ptr;

static void fire(enum fault f, int status)
{
    switch (f) {
    case F_SEGV: *null_ptr = 1; break;
    case F_ABORT: abort();
    case F_EXIT: exit(status);
    }
}

static int crash_create_common(dp_plugin_ctx *ctx, const dp_params *params, void **state, enum fault f)
{
    static const char *const known[] = {"in", "status", NULL};
    if (host->params_check_known(ctx, params, known) != 0)
        return -1;
    struct crash_state s = {.in = IN_RUN, .status = 3};
    int64_t status = 3;
    if (parse_in(ctx, params, &s.in) != 0 || host->param_int(params, "status", &status) < 0)
        return -1;
    s.status = (int)status;
    /* Fires at the add-time params check too: only isolated jobs survive. */
    if (s.in == IN_CREATE)
        fire(f, s.status);
    struct crash_state *p = malloc(sizeof(*p));
    if (!p) {
        host->set_error(ctx, 0, "out of memory");
        return -1;
    }
    *p = s;
    *state = p;
    return 0;
}

#define CRASH_TYPE(NAME, F)                                                                                            \
    static int NAME##_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)                                \
    {                                                                                                                  \
        return crash_create_common(ctx, params, state, F);                                                             \
    }                                                                                                                  \
    static dp_plugin_result NAME##_run(dp_plugin_ctx *ctx, void *state)                                                \
    {                                                                                                                  \
        const struct crash_state *s = state;                                                                           \
        (void)ctx;                                                                                                     \
        if (s->in == IN_RUN)                                                                                           \
            fire(F, s->status);                                                                                        \
        return DP_PLUGIN_READY;                                                                                        \
    }                                                                                                                  \
    static dp_plugin_result NAME##_check(dp_plugin_ctx *ctx, void *state)                                              \
    {                                                                                                                  \
        const struct crash_state *s = state;                                                                           \
        (void)ctx;                                                                                                     \
        if (s->in == IN_CHECK)                                                                                         \
            fire(F, s->status);                                                                                        \
        return DP_PLUGIN_READY;                                                                                        \
    }                                                                                                                  \
    static const dp_job_type NAME##_type = {                                                                           \
        .struct_size = sizeof(dp_job_type),                                                                            \
        .name = #NAME,                                                                                                 \
        .description = "fault: " #NAME,                                                                                \
        .create = NAME##_create,                                                                                       \
        .run = NAME##_run,                                                                                             \
        .check = NAME##_check,                                                                                         \
        .destroy = free,                                                                                               \
    };

CRASH_TYPE(segv, F_SEGV)
CRASH_TYPE(abort, F_ABORT)
CRASH_TYPE(exit, F_EXIT)

/* ---- ignoring cancellation ---------------------------------------------- */

static int no_params_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {NULL};
    (void)state;
    return host->params_check_known(ctx, params, known);
}

static volatile unsigned long spin_sink;

static dp_plugin_result spin_run(dp_plugin_ctx *ctx, void *state)
{
    (void)ctx;
    (void)state;
    for (;;)
        spin_sink++;
    return DP_PLUGIN_READY;
}

struct u64_state {
    uint64_t v;
    enum where in;
};

static int sleep_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {"duration", "in", NULL};
    if (host->params_check_known(ctx, params, known) != 0)
        return -1;
    uint64_t ms = 3600000;
    enum where in = IN_RUN;
    if (host->param_duration_ms(params, "duration", &ms) < 0 || parse_in(ctx, params, &in) != 0)
        return -1;
    struct u64_state *s = malloc(sizeof(*s));
    if (!s)
        return -1;
    s->v = ms;
    s->in = in;
    *state = s;
    return 0;
}

static void deaf_sleep(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ; /* EINTR: keep sleeping, deliberately deaf */
}

static dp_plugin_result sleep_run(dp_plugin_ctx *ctx, void *state)
{
    const struct u64_state *s = state;
    (void)ctx;
    if (s->in == IN_RUN)
        deaf_sleep(s->v);
    return DP_PLUGIN_READY;
}

static dp_plugin_result sleep_check(dp_plugin_ctx *ctx, void *state)
{
    const struct u64_state *s = state;
    (void)ctx;
    if (s->in == IN_CHECK)
        deaf_sleep(s->v);
    return DP_PLUGIN_READY;
}

/* ---- bad results -------------------------------------------------------- */

static int bytes_create(dp_plugin_ctx *ctx, const dp_params *params, void **state, int64_t dflt)
{
    static const char *const known[] = {"bytes", NULL};
    if (host->params_check_known(ctx, params, known) != 0)
        return -1;
    int64_t n = dflt;
    if (host->param_int(params, "bytes", &n) < 0)
        return -1;
    if (n < 0) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param 'bytes' must be 0 or more");
        return -1;
    }
    struct u64_state *s = malloc(sizeof(*s));
    if (!s)
        return -1;
    s->v = (uint64_t)n;
    *state = s;
    return 0;
}

static int huge_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    return bytes_create(ctx, params, state, 10 * 1024 * 1024);
}

static dp_plugin_result huge_run(dp_plugin_ctx *ctx, void *state)
{
    const struct u64_state *s = state;
    char *msg = malloc(s->v + 1);
    if (!msg)
        return DP_PLUGIN_ERROR;
    /* Starts with a recognisable prefix, then filler. */
    for (uint64_t i = 0; i < s->v; i++)
        msg[i] = (char)('a' + i % 26);
    if (s->v >= 5)
        memcpy(msg, "HUGE:", 5);
    msg[s->v] = '\0';
    host->set_error(ctx, 0, "%s", msg);
    free(msg);
    return DP_PLUGIN_ERROR;
}

static int status_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {"status", NULL};
    if (host->params_check_known(ctx, params, known) != 0)
        return -1;
    int64_t st = 42;
    if (host->param_int(params, "status", &st) < 0)
        return -1;
    struct u64_state *s = malloc(sizeof(*s));
    if (!s)
        return -1;
    s->v = (uint64_t)st;
    *state = s;
    return 0;
}

static dp_plugin_result bad_status_run(dp_plugin_ctx *ctx, void *state)
{
    const struct u64_state *s = state;
    (void)ctx;
    return (dp_plugin_result)(int)s->v;
}

static int null_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {NULL};
    if (host->params_check_known(ctx, params, known) != 0)
        return -1;
    *state = NULL;
    return 0;
}

static dp_plugin_result null_run(dp_plugin_ctx *ctx, void *state)
{
    if (state != NULL) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "expected the NULL state create made");
        return DP_PLUGIN_ERROR;
    }
    return DP_PLUGIN_READY;
}

static void null_destroy(void *state)
{
    if (state != NULL)
        abort();
}

static int leak_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    return bytes_create(ctx, params, state, 1024 * 1024);
}

static dp_plugin_result leak_run(dp_plugin_ctx *ctx, void *state)
{
    const struct u64_state *s = state;
    char *p = malloc(s->v ? s->v : 1);
    if (!p) {
        host->set_error(ctx, 0, "out of memory after leaking");
        return DP_PLUGIN_ERROR;
    }
    memset(p, 0x5a, s->v); /* touch it: make the leak resident */
    host->log(ctx, DP_PLUGIN_LOG_DEBUG, "leaked %llu bytes at %p", (unsigned long long)s->v, (void *)p);
    return DP_PLUGIN_READY;
}

/* ---- garbage on the runner's socket ------------------------------------- */

static dp_plugin_result garbage_run(dp_plugin_ctx *ctx, void *state)
{
    (void)state;
    /* A frame header claiming 3 GiB, then noise. */
    static const unsigned char junk[] = {0x00, 0x00, 0x00, 0xC0, 0x0B, 'j', 'u', 'n', 'k'};
    if (write(3, junk, sizeof junk) < 0) {
        host->set_error(ctx, 0, "no fd 3 to write junk to");
        return DP_PLUGIN_ERROR;
    }
    host->sleep_ms(ctx, 10000);
    return DP_PLUGIN_READY;
}

/* ---- processes left behind ----------------------------------------------- */

enum then { THEN_READY, THEN_FAIL, THEN_SEGV, THEN_HANG };

struct fork_state {
    char sleep_arg[64];
    bool exec;
    bool setsid;
    bool close_fds;
    enum then then;
};

static int fork_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {"helper", "sleep", "setsid", "close_fds", "then", NULL};
    if (host->params_check_known(ctx, params, known) != 0)
        return -1;
    const char *helper = "fork", *sleep_arg = "3600", *then = "ready";
    int setsid_ = 0, close_fds = 0;
    if (host->param_string(params, "helper", &helper) < 0 || host->param_string(params, "sleep", &sleep_arg) < 0 ||
        host->param_string(params, "then", &then) < 0 || host->param_bool(params, "setsid", &setsid_) < 0 ||
        host->param_bool(params, "close_fds", &close_fds) < 0)
        return -1;
    struct fork_state s = {.setsid = setsid_ != 0, .close_fds = close_fds != 0};
    if (strcmp(helper, "fork") != 0 && strcmp(helper, "exec") != 0) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param 'helper': expected \"fork\" or \"exec\", found \"%s\"",
                        helper);
        return -1;
    }
    s.exec = strcmp(helper, "exec") == 0;
    if (strlen(sleep_arg) >= sizeof s.sleep_arg || strtod(sleep_arg, NULL) <= 0) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "param 'sleep': expected a number of seconds, found \"%s\"",
                        sleep_arg);
        return -1;
    }
    strcpy(s.sleep_arg, sleep_arg);
    static const char *const thens[] = {"ready", "fail", "segv", "hang"};
    size_t i = 0;
    while (i < 4 && strcmp(then, thens[i]) != 0)
        i++;
    if (i == 4) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT,
                        "param 'then': expected \"ready\", \"fail\", \"segv\" or \"hang\", found "
                        "\"%s\"",
                        then);
        return -1;
    }
    s.then = (enum then)i;
    struct fork_state *p = malloc(sizeof(*p));
    if (!p)
        return -1;
    *p = s;
    *state = p;
    return 0;
}

static dp_plugin_result fork_run(dp_plugin_ctx *ctx, void *state)
{
    const struct fork_state *s = state;
    pid_t pid = fork();
    if (pid < 0) {
        host->set_error(ctx, 0, "fork failed");
        return DP_PLUGIN_ERROR;
    }
    if (pid == 0) {
        /* Async-signal-safe calls only from here on. */
        if (s->setsid)
            setsid();
        if (s->close_fds)
            for (int fd = 3; fd < 1024; fd++)
                close(fd);
        if (s->exec) {
            char *const argv[] = {"sleep", (char *)(uintptr_t)s->sleep_arg, NULL};
            execv("/bin/sleep", argv);
            _exit(127);
        }
        double secs = strtod(s->sleep_arg, NULL);
        deaf_sleep((uint64_t)(secs * 1000.0));
        _exit(0);
    }
    switch (s->then) {
    case THEN_READY: return DP_PLUGIN_READY;
    case THEN_FAIL:
        host->set_error(ctx, 0, "fork: failed on purpose, helper %d left running", (int)pid);
        return DP_PLUGIN_ERROR;
    case THEN_SEGV: *null_ptr = 1; return DP_PLUGIN_READY;
    case THEN_HANG: deaf_sleep(3600u * 1000u); return DP_PLUGIN_READY;
    }
    return DP_PLUGIN_READY;
}

/* ---- which version runs -------------------------------------------------- */

static dp_plugin_result version_run(dp_plugin_ctx *ctx, void *state)
{
    (void)state;
    host->log(ctx, DP_PLUGIN_LOG_WARN, "running faults %s", FAULTS_VERSION);
    return DP_PLUGIN_READY;
}

/* ---- store -------------------------------------------------------------- */

static int store_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {"key", NULL};
    const char *key = "faults.counter";
    if (host->params_check_known(ctx, params, known) != 0 || host->param_string(params, "key", &key) < 0)
        return -1;
    *state = (void *)(uintptr_t)key; /* owned by the params */
    return 0;
}

static dp_plugin_result store_run(dp_plugin_ctx *ctx, void *state)
{
    const char *key = state;
    uint64_t n = 0;
    size_t len = 0;
    int rc = host->store_get(ctx, key, &n, sizeof n, &len);
    if (rc < 0 || (rc == 0 && len != sizeof n)) {
        host->set_error(ctx, 0, "store_get(%s) failed: rc %d, len %zu", key, rc, len);
        return DP_PLUGIN_ERROR;
    }
    n++;
    if (host->store_set(ctx, key, &n, sizeof n) != 0) {
        host->set_error(ctx, 0, "store_set(%s) failed", key);
        return DP_PLUGIN_ERROR;
    }
    uint64_t back = 0;
    if (host->store_get(ctx, key, &back, sizeof back, &len) != 0 || back != n) {
        host->set_error(ctx, 0, "store_get(%s) read back %llu, wrote %llu", key, (unsigned long long)back,
                        (unsigned long long)n);
        return DP_PLUGIN_ERROR;
    }
    host->log(ctx, DP_PLUGIN_LOG_WARN, "counter %llu", (unsigned long long)n);
    return DP_PLUGIN_READY;
}

/* ---- pidlog ------------------------------------------------------------ */

static int pidlog_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {"path", NULL};
    (void)state;
    if (host->params_check_known(ctx, params, known) != 0)
        return -1;
    const char *path = NULL;
    if (host->param_string(params, "path", &path) != DP_PARAM_OK) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "pidlog: `path` is required");
        return -1;
    }
    static unsigned creates; /* in this process */
    char line[80];
    int n = snprintf(line, sizeof line, "%ld %ld %u\n", (long)getpid(), (long)getppid(), ++creates);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
        host->set_error(ctx, 0, "pidlog: cannot append to %s", path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static dp_plugin_result pidlog_run(dp_plugin_ctx *ctx, void *state)
{
    (void)ctx;
    (void)state;
    return DP_PLUGIN_READY;
}

/* ---- chaos (soak) ------------------------------------------------------- */

struct chaos_state {
    double fail, not_ready, hang;
    uint64_t max_sleep_ms;
    uint64_t seed;
};

static _Atomic uint64_t chaos_counter;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit(uint64_t *x)
{
    return (double)(splitmix(x) >> 11) * (1.0 / 9007199254740992.0);
}

static int chaos_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {"fail", "not_ready", "hang", "max_sleep", "seed", NULL};
    if (host->params_check_known(ctx, params, known) != 0)
        return -1;
    struct chaos_state s = {0};
    int64_t seed = 0;
    if (host->param_float(params, "fail", &s.fail) < 0 || host->param_float(params, "not_ready", &s.not_ready) < 0 ||
        host->param_float(params, "hang", &s.hang) < 0 ||
        host->param_duration_ms(params, "max_sleep", &s.max_sleep_ms) < 0 || host->param_int(params, "seed", &seed) < 0)
        return -1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    s.seed = (uint64_t)seed ^ (uint64_t)ts.tv_nsec ^ (atomic_fetch_add(&chaos_counter, 1) * 0x2545f4914f6cdd1dull) ^
             (uint64_t)getpid();
    struct chaos_state *p = malloc(sizeof(*p));
    if (!p)
        return -1;
    *p = s;
    *state = p;
    return 0;
}

static dp_plugin_result chaos_run(dp_plugin_ctx *ctx, void *state)
{
    struct chaos_state *s = state;
    double r = unit(&s->seed);
    if (s->max_sleep_ms) {
        uint64_t ms = splitmix(&s->seed) % (s->max_sleep_ms + 1);
        if (host->sleep_ms(ctx, ms) != 0) {
            host->set_error(ctx, 0, "chaos: interrupted");
            return DP_PLUGIN_ERROR;
        }
    }
    if (r < s->fail) {
        host->set_error(ctx, 0, "chaos: failed on attempt %u", host->attempt(ctx));
        return DP_PLUGIN_ERROR;
    }
    r -= s->fail;
    if (r < s->not_ready)
        return DP_PLUGIN_NOT_READY;
    r -= s->not_ready;
    if (r < s->hang) {
        /* Cooperative: wait for the deadline (or cancellation). */
        host->sleep_ms(ctx, 24u * 3600u * 1000u);
        host->set_error(ctx, 0, "chaos: hung until cancelled");
        return DP_PLUGIN_ERROR;
    }
    return DP_PLUGIN_READY;
}

/* ---- the plugin --------------------------------------------------------- */

static const dp_job_type spin_type = {.struct_size = sizeof(dp_job_type),
                                      .name = "spin",
                                      .description = "fault: busy loop forever, ignoring cancellation",
                                      .create = no_params_create,
                                      .run = spin_run};
static const dp_job_type sleep_type = {.struct_size = sizeof(dp_job_type),
                                       .name = "sleep",
                                       .description = "fault: sleep `duration` ignoring cancellation",
                                       .create = sleep_create,
                                       .run = sleep_run,
                                       .check = sleep_check,
                                       .destroy = free};
static const dp_job_type huge_type = {.struct_size = sizeof(dp_job_type),
                                      .name = "huge_error",
                                      .description = "fault: fail with a `bytes`-long message",
                                      .create = huge_create,
                                      .run = huge_run,
                                      .destroy = free};
static const dp_job_type bad_status_type = {.struct_size = sizeof(dp_job_type),
                                            .name = "bad_status",
                                            .description = "fault: return `status`, not a dp_plugin_result",
                                            .create = status_create,
                                            .run = bad_status_run,
                                            .destroy = free};
static const dp_job_type null_type = {.struct_size = sizeof(dp_job_type),
                                      .name = "null_state",
                                      .description = "fault: create succeeds with a NULL state",
                                      .create = null_create,
                                      .run = null_run,
                                      .destroy = null_destroy};
static const dp_job_type leak_type = {.struct_size = sizeof(dp_job_type),
                                      .name = "leak",
                                      .description = "fault: leak `bytes` per run",
                                      .create = leak_create,
                                      .run = leak_run,
                                      .destroy = free};
static const dp_job_type garbage_type = {.struct_size = sizeof(dp_job_type),
                                         .name = "garbage",
                                         .description = "fault: junk on fd 3 (isolated only)",
                                         .create = no_params_create,
                                         .run = garbage_run};
static const dp_job_type store_type = {.struct_size = sizeof(dp_job_type),
                                       .name = "store",
                                       .description = "adds 1 to a counter in the host's store and logs it",
                                       .create = store_create,
                                       .run = store_run};
static const dp_job_type fork_type = {.struct_size = sizeof(dp_job_type),
                                      .name = "fork",
                                      .description = "fault: leave a helper process behind (isolated only)",
                                      .create = fork_create,
                                      .run = fork_run,
                                      .destroy = free};
static const dp_job_type version_type = {.struct_size = sizeof(dp_job_type),
                                         .name = "version",
                                         .description = "logs the version of the plugin that runs",
                                         .create = no_params_create,
                                         .run = version_run};
static const dp_job_type pidlog_type = {.struct_size = sizeof(dp_job_type),
                                        .name = "pidlog",
                                        .description = "appends the pid its create runs in to `path`",
                                        .create = pidlog_create,
                                        .run = pidlog_run};
static const dp_job_type chaos_type = {.struct_size = sizeof(dp_job_type),
                                       .name = "chaos",
                                       .description = "soak: random failures, not ready, hangs",
                                       .create = chaos_create,
                                       .run = chaos_run,
                                       .destroy = free};

/* No check and no end hook: the isolated worker ends the instance right
 * after run (runner.c), and its crash in destroy is still reported. Only an
 * instance that ran crashes: the add-time params check (create, destroy)
 * passes. */
static int destroy_segv_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    if (no_params_create(ctx, params, state) != 0)
        return -1;
    *state = calloc(1, sizeof(int));
    if (!*state) {
        host->set_error(ctx, 0, "out of memory");
        return -1;
    }
    return 0;
}

static dp_plugin_result destroy_segv_run(dp_plugin_ctx *ctx, void *state)
{
    (void)ctx;
    *(int *)state = 1;
    return DP_PLUGIN_READY;
}

static void destroy_segv_destroy(void *state)
{
    if (*(int *)state)
        fire(F_SEGV, 0);
    free(state);
}

static const dp_job_type destroy_segv_type = {.struct_size = sizeof(dp_job_type),
                                              .name = "destroy_segv",
                                              .description = "fault: ready, then crash in destroy",
                                              .create = destroy_segv_create,
                                              .run = destroy_segv_run,
                                              .destroy = destroy_segv_destroy};

static const dp_job_type *const types[] = {
    &segv_type,       &abort_type,   &exit_type,   &spin_type,         &sleep_type, &huge_type,
    &bad_status_type, &null_type,    &leak_type,   &garbage_type,      &store_type, &chaos_type,
    &fork_type,       &version_type, &pidlog_type, &destroy_segv_type, NULL};

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "faults",
    .version = FAULTS_VERSION,
    .description = "test plugin: job types that crash, hang, leak and lie",
    .job_types = types,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
static void *sleep_for_ever(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    host = h;
    static bool started;
    pthread_t t;
    if (!started && getenv("FAULTS_THREAD_AT_LOAD") && pthread_create(&t, NULL, sleep_for_ever, NULL) == 0) {
        pthread_detach(t);
        started = true;
    }
    return &desc;
}
