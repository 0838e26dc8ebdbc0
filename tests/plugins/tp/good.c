/*
 * good.c - a well-behaved test plugin, built twice (GOOD_VERSION "1.0.0" and
 * "2.0.0") for the reload tests.
 *
 *   good.echo   logs `message`, stores it under "good.last"; `fail` (a
 *               message) fails, `permanent` makes that failure final,
 *               `not_ready` answers not ready. Reports the version it ran
 *               on under "good.ran.<job>".
 *   good.probe  check only: ready when store key `key` exists; its end
 *               hook stores "cut" or "done" under "good.end".
 *   good.block  runs until cancelled or until store key "good.release"
 *               exists (for jobs in flight during a reload).
 *
 * init and fini append "init VERSION" / "fini VERSION" to the file named by
 * $GOOD_TRACE (if set), so tests can see when a copy is unloaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <daggerpool/plugin.h>

#ifndef GOOD_VERSION
#define GOOD_VERSION "1.0.0"
#endif

static const dp_host_api *host;

static void trace(const char *what)
{
    const char *path = getenv("GOOD_TRACE");
    if (!path)
        return;
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "%s %s\n", what, GOOD_VERSION);
        fclose(f);
    }
}

static int good_init(char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    trace("init");
    return 0;
}

static void good_fini(void)
{
    trace("fini");
}

struct echo {
    const char *message, *fail;
    int permanent, not_ready;
};

static int echo_create(dp_plugin_ctx *ctx, const dp_params *p, void **state)
{
    static const char *const known[] = {"message", "fail", "permanent", "not_ready", NULL};
    if (host->params_check_known(ctx, p, known) != 0)
        return -1;
    struct echo e = {"hello", NULL, 0, 0};
    if (host->param_string(p, "message", &e.message) < 0 || host->param_string(p, "fail", &e.fail) < 0 ||
        host->param_bool(p, "permanent", &e.permanent) < 0 || host->param_bool(p, "not_ready", &e.not_ready) < 0)
        return -1;
    struct echo *s = malloc(sizeof(*s));
    if (!s)
        return -1;
    *s = e;
    *state = s;
    return 0;
}

static dp_plugin_result echo_run(dp_plugin_ctx *ctx, void *state)
{
    const struct echo *e = state;
    host->log(ctx, DP_PLUGIN_LOG_INFO, "echo %s (attempt %u, version %s)", e->message, host->attempt(ctx),
              GOOD_VERSION);
    host->store_set(ctx, "good.last", e->message, strlen(e->message));
    char key[256];
    snprintf(key, sizeof(key), "good.ran.%s", host->job_name(ctx));
    host->store_set(ctx, key, GOOD_VERSION, strlen(GOOD_VERSION));
    if (e->fail) {
        host->set_error(ctx, e->permanent ? DP_PLUGIN_ERROR_PERMANENT : 0, "%s", e->fail);
        return DP_PLUGIN_ERROR;
    }
    return e->not_ready ? DP_PLUGIN_NOT_READY : DP_PLUGIN_READY;
}

static int probe_create(dp_plugin_ctx *ctx, const dp_params *p, void **state)
{
    const char *key = NULL;
    int rc = host->param_string(p, "key", &key);
    if (rc < 0)
        return -1;
    if (rc == DP_PARAM_ABSENT) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "good.probe needs `key`");
        return -1;
    }
    *state = (void *)(uintptr_t)key;
    return 0;
}

static dp_plugin_result probe_check(dp_plugin_ctx *ctx, void *state)
{
    size_t len;
    return host->store_get(ctx, state, NULL, 0, &len) == 0 ? DP_PLUGIN_READY : DP_PLUGIN_NOT_READY;
}

/* ABI 1.1's end hook: records how the attempt ended under "good.end". */
static void probe_end(dp_plugin_ctx *ctx, void *state)
{
    (void)state;
    const char *how = host->is_cancelled(ctx) ? "cut" : "done";
    host->store_set(ctx, "good.end", how, strlen(how));
}

#ifndef GOOD_NO_BLOCK
static dp_plugin_result block_run(dp_plugin_ctx *ctx, void *state)
{
    (void)state;
    size_t len;
    host->store_set(ctx, "good.blocking", GOOD_VERSION, strlen(GOOD_VERSION));
    while (host->store_get(ctx, "good.release", NULL, 0, &len) != 0) {
        if (host->sleep_ms(ctx, 5) != 0) {
            host->set_error(ctx, 0, "cancelled while blocking");
            return DP_PLUGIN_ERROR;
        }
    }
    return DP_PLUGIN_READY;
}
#endif

static const dp_job_type echo_type = {
    .struct_size = sizeof(dp_job_type), .name = "echo", .create = echo_create, .run = echo_run, .destroy = free};
static const dp_job_type probe_type = {.struct_size = sizeof(dp_job_type),
                                       .name = "probe",
                                       .create = probe_create,
                                       .check = probe_check,
                                       .end = probe_end};
#ifdef GOOD_NO_BLOCK
static const dp_job_type *const types[] = {&echo_type, &probe_type, NULL};
#else
static const dp_job_type block_type = {.struct_size = sizeof(dp_job_type), .name = "block", .run = block_run};
static const dp_job_type *const types[] = {&echo_type, &probe_type, &block_type, NULL};
#endif

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "good",
    .version = GOOD_VERSION,
    .description = "test plugin",
    .job_types = types,
    .init = good_init,
    .fini = good_fini,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    host = h;
    return &desc;
}
