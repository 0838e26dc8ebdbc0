/*
 * slurm_drive.c - drives a job plugin directly, through a minimal host table
 * of its own, so the slurm plugin can be tested against a real cluster
 * without the engine: one job, a sequence of calls, a store that lives for
 * the whole sequence.
 *
 *   slurm_drive PLUGIN.so JOBNAME [key=value ...] -- STEP...
 *
 * Params: `key=value` (an integer when it parses as one); `env.K=v` goes
 * into the `env` group; `sbatch_args=a,b` is a list. Steps:
 *   create        create the instance (prints "create: ok" or the error)
 *   run | check   one call; prints "run: ready|not_ready|error: MSG"
 *   wait          check every 300 ms until not "not ready" (60 s at most)
 *   cancel@MS     the next calls' context is cancelled MS ms from now
 *   deadline@MS   the next calls' context expires MS ms from now
 *   end           the type's end hook (ABI 1.1): the attempt is over; it
 *                 reads as cut short when the context is done (cancel@0)
 *   destroy       frees the instance
 *   sleep@MS      sleeps
 *   store         prints the store's value for this job
 * Exit status 0; the test scripts read the printed lines.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <daggerpool/plugin.h>

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAXP 64

struct dp_params {
    int n;
    const char *key[MAXP];
    const char *val[MAXP];
    struct dp_params *env;
};

struct dp_plugin_ctx {
    const char *job;
    unsigned attempt;
    int fd;               /* timerfd: readable at the deadline / cancellation */
    uint64_t deadline_ms; /* 0: none */
    char err[4096];
    unsigned flags;
};

static char store_key[256], store_val[256];
static size_t store_len;
static int store_has;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

__attribute__((format(printf, 3, 4))) static void h_log(dp_plugin_ctx *c, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "log[%d] %s: ", level, c->job);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

__attribute__((format(printf, 3, 4))) static void h_set_error(dp_plugin_ctx *c, unsigned flags, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->flags = flags;
}

static const char *h_job_name(dp_plugin_ctx *c)
{
    return c->job;
}
static unsigned h_attempt(dp_plugin_ctx *c)
{
    return c->attempt;
}
static int h_is_cancelled(dp_plugin_ctx *c)
{
    return c->deadline_ms && now_ms() >= c->deadline_ms;
}
static int64_t h_remaining_ms(dp_plugin_ctx *c)
{
    if (!c->deadline_ms)
        return -1;
    uint64_t n = now_ms();
    return n >= c->deadline_ms ? 0 : (int64_t)(c->deadline_ms - n);
}
static int h_sleep_ms(dp_plugin_ctx *c, uint64_t ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int64_t r = h_remaining_ms(c);
    if (r >= 0 && (uint64_t)r < ms) {
        poll(&p, 1, (int)r);
        return -1;
    }
    return poll(&p, 1, (int)ms) > 0 ? -1 : 0;
}
static int h_cancel_fd(dp_plugin_ctx *c)
{
    return c->fd;
}

static const char *find(const dp_params *p, const char *k)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->key[i], k) == 0)
            return p->val[i];
    return NULL;
}
static int h_string(const dp_params *p, const char *k, const char **out)
{
    const char *v = find(p, k);
    if (!v)
        return DP_PARAM_ABSENT;
    char *end;
    strtoll(v, &end, 10);
    if (*v && !*end)
        return DP_PARAM_WRONG_TYPE; /* an integer */
    *out = v;
    return DP_PARAM_OK;
}
static int h_int(const dp_params *p, const char *k, int64_t *out)
{
    const char *v = find(p, k);
    if (!v)
        return DP_PARAM_ABSENT;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end)
        return DP_PARAM_WRONG_TYPE;
    *out = x;
    return DP_PARAM_OK;
}
static int h_float(const dp_params *p, const char *k, double *out)
{
    return DP_PARAM_ABSENT;
}
static int h_bool(const dp_params *p, const char *k, int *out)
{
    return DP_PARAM_ABSENT;
}
static int h_duration(const dp_params *p, const char *k, uint64_t *out)
{
    const char *v = find(p, k);
    if (!v)
        return DP_PARAM_ABSENT;
    char *end;
    double x = strtod(v, &end);
    double mul = !*end                ? 1
                 : !strcmp(end, "ms") ? 1
                 : !strcmp(end, "s")  ? 1000
                 : !strcmp(end, "m")  ? 60000
                 : !strcmp(end, "h")  ? 3600000
                                      : -1;
    if (end == v || mul < 0)
        return DP_PARAM_BAD_VALUE;
    *out = (uint64_t)(x * mul);
    return DP_PARAM_OK;
}
static int h_list_count(const dp_params *p, const char *k, size_t *n)
{
    const char *v = find(p, k);
    if (!v)
        return DP_PARAM_ABSENT;
    if (strcmp(k, "sbatch_args") != 0)
        return DP_PARAM_WRONG_TYPE;
    *n = 1;
    for (const char *s = v; *s; s++)
        *n += *s == ',';
    return DP_PARAM_OK;
}
static int h_list_item(const dp_params *p, const char *k, size_t i, const char **out)
{
    static char items[16][256]; /* one slot per index: stays valid */
    const char *v = find(p, k);
    if (i >= 16)
        return DP_PARAM_BAD_VALUE;
    if (!v)
        return DP_PARAM_ABSENT;
    for (; i && v; i--) {
        v = strchr(v, ',');
        if (v)
            v++;
    }
    if (!v)
        return DP_PARAM_BAD_VALUE;
    snprintf(items[i], sizeof items[i], "%.*s", (int)strcspn(v, ","), v);
    *out = items[i];
    return DP_PARAM_OK;
}
static int h_group(const dp_params *p, const char *k, const dp_params **out)
{
    if (strcmp(k, "env") != 0 || !p->env)
        return find(p, k) ? DP_PARAM_WRONG_TYPE : DP_PARAM_ABSENT;
    *out = p->env;
    return DP_PARAM_OK;
}
static size_t h_count(const dp_params *p)
{
    return (size_t)p->n;
}
static const char *h_key_at(const dp_params *p, size_t i)
{
    return i < (size_t)p->n ? p->key[i] : NULL;
}
static int h_check_known(dp_plugin_ctx *c, const dp_params *p, const char *const *known)
{
    for (int i = 0; i < p->n; i++) {
        int ok = 0;
        for (size_t k = 0; known[k] && !ok; k++)
            ok = strcmp(known[k], p->key[i]) == 0;
        if (!ok) {
            h_set_error(c, DP_PLUGIN_ERROR_PERMANENT, "unknown param '%s'", p->key[i]);
            return -1;
        }
    }
    if (p->env && !find(p, "env")) {
        int ok = 0;
        for (size_t k = 0; known[k] && !ok; k++)
            ok = strcmp(known[k], "env") == 0;
        if (!ok) {
            h_set_error(c, DP_PLUGIN_ERROR_PERMANENT, "unknown param 'env'");
            return -1;
        }
    }
    return 0;
}
static int h_store_set(dp_plugin_ctx *c, const char *k, const void *d, size_t n)
{
    if (n >= sizeof store_val)
        return -1;
    snprintf(store_key, sizeof store_key, "%s", k);
    memcpy(store_val, d, n);
    store_len = n;
    store_has = 1;
    return 0;
}
static int h_store_get(dp_plugin_ctx *c, const char *k, void *buf, size_t cap, size_t *len)
{
    if (!store_has || strcmp(k, store_key) != 0)
        return 1;
    memcpy(buf, store_val, store_len < cap ? store_len : cap);
    *len = store_len;
    return 0;
}
static int h_store_delete(dp_plugin_ctx *c, const char *k)
{
    if (!store_has || strcmp(k, store_key) != 0)
        return 1;
    store_has = 0;
    return 0;
}

static const dp_host_api api = {
    .struct_size = sizeof(dp_host_api),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .host_version = "slurm_drive",
    .log = h_log,
    .set_error = h_set_error,
    .job_name = h_job_name,
    .attempt = h_attempt,
    .is_cancelled = h_is_cancelled,
    .remaining_ms = h_remaining_ms,
    .sleep_ms = h_sleep_ms,
    .cancel_fd = h_cancel_fd,
    .param_string = h_string,
    .param_int = h_int,
    .param_float = h_float,
    .param_bool = h_bool,
    .param_duration_ms = h_duration,
    .param_list_count = h_list_count,
    .param_list_item = h_list_item,
    .param_group = h_group,
    .param_count = h_count,
    .param_key_at = h_key_at,
    .params_check_known = h_check_known,
    .store_set = h_store_set,
    .store_get = h_store_get,
    .store_delete = h_store_delete,
};

static const char *name_of(dp_plugin_result r)
{
    return r == DP_PLUGIN_READY ? "ready" : r == DP_PLUGIN_NOT_READY ? "not_ready" : "error";
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: slurm_drive PLUGIN.so JOBNAME [key=value ...] -- STEP...\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "slurm_drive: %s\n", dlerror());
        return 2;
    }
    dp_plugin_entry_fn entry = (dp_plugin_entry_fn)dlsym(h, DP_PLUGIN_ENTRY_NAME);
    const dp_plugin_desc *d = entry ? entry(&api) : NULL;
    if (!d || !d->job_types[0]) {
        fprintf(stderr, "slurm_drive: %s: no entry point or no job type\n", argv[1]);
        return 2;
    }
    const dp_job_type *t = d->job_types[0];

    static dp_params params, env;
    int i = 3;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || params.n >= MAXP || env.n >= MAXP) {
            fprintf(stderr, "slurm_drive: bad param '%s'\n", argv[i]);
            return 2;
        }
        *eq = '\0';
        dp_params *into = &params;
        const char *key = argv[i];
        if (strncmp(key, "env.", 4) == 0) {
            into = &env;
            key += 4;
            params.env = &env;
        }
        into->key[into->n] = key;
        into->val[into->n++] = eq + 1;
    }
    dp_plugin_ctx ctx = {.job = argv[2], .fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)};
    void *state = NULL;
    int have = 0;
    for (i++; i < argc; i++) {
        const char *s = argv[i];
        ctx.err[0] = '\0';
        if (strcmp(s, "create") == 0) {
            ctx.attempt++;
            if (t->create(&ctx, &params, &state) == 0) {
                have = 1;
                printf("create: ok\n");
            } else {
                printf("create: error: %s\n", ctx.err);
            }
        } else if ((strcmp(s, "run") == 0 || strcmp(s, "check") == 0) && have) {
            dp_plugin_result r = s[0] == 'r' ? t->run(&ctx, state) : t->check(&ctx, state);
            printf("%s: %s%s%s\n", s, name_of(r), r == DP_PLUGIN_ERROR ? ": " : "",
                   r == DP_PLUGIN_ERROR ? ctx.err : "");
        } else if (strcmp(s, "wait") == 0 && have) {
            dp_plugin_result r = DP_PLUGIN_NOT_READY;
            uint64_t end = now_ms() + 60000;
            while (now_ms() < end) {
                ctx.err[0] = '\0';
                r = t->check(&ctx, state);
                if (r != DP_PLUGIN_NOT_READY)
                    break;
                usleep(300000);
            }
            printf("wait: %s%s%s\n", name_of(r), r == DP_PLUGIN_ERROR ? ": " : "", r == DP_PLUGIN_ERROR ? ctx.err : "");
        } else if (strncmp(s, "cancel@", 7) == 0 || strncmp(s, "deadline@", 9) == 0) {
            uint64_t ms = strtoull(strchr(s, '@') + 1, NULL, 10);
            ctx.deadline_ms = now_ms() + ms;
            struct itimerspec its = {.it_value = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L}};
            if (!ms)
                its.it_value.tv_nsec = 1;
            timerfd_settime(ctx.fd, 0, &its, NULL);
        } else if (strncmp(s, "sleep@", 6) == 0) {
            usleep((useconds_t)strtoul(s + 6, NULL, 10) * 1000u);
        } else if (strcmp(s, "end") == 0 && have) {
            if (t->struct_size > offsetof(dp_job_type, end) && t->end)
                t->end(&ctx, state);
            printf("end: ok\n");
        } else if (strcmp(s, "destroy") == 0 && have) {
            t->destroy(state);
            state = NULL;
            have = 0;
            /* A new attempt gets a fresh context. */
            ctx.deadline_ms = 0;
            struct itimerspec off = {{0, 0}, {0, 0}};
            timerfd_settime(ctx.fd, 0, &off, NULL);
            printf("destroy: ok\n");
        } else if (strcmp(s, "store") == 0) {
            printf("store: %.*s\n", store_has ? (int)store_len : 0, store_val);
        } else {
            fprintf(stderr, "slurm_drive: bad step '%s' (or no instance)\n", s);
            return 2;
        }
        fflush(stdout);
    }
    if (have)
        t->destroy(state);
    close(ctx.fd);
    return 0;
}
