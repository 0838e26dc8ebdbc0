/*
 * hs.c - the hot-swap test plugin, built several times from this one source
 * so that versions differ observably (see CMakeLists.txt):
 *
 *   VERSION="1" / "2"   good builds; each job reports the version it ran on
 *                       (the result's plugin_version, and store key
 *                       "hs.ran.<job>")
 *   HS_NO_EXTRA         lacks hs.extra (a reload to it must be refused
 *                       while jobs use hs.extra)
 *   HS_BAD_INIT         init fails
 *   HS_BAD_ABI          declares plugin ABI major 9
 *
 *   hs.work   sleeps `ms` (default 0, cancellable), then is ready
 *   hs.block  runs until store key "hs.release" exists (jobs in flight
 *             during a swap); sets "hs.blocking" while it waits
 *   hs.extra  ready at once
 */
#include <stdio.h>
#include <string.h>

#include <daggerpool/plugin.h>

#ifndef VERSION
#define VERSION "1"
#endif

static const dp_host_api *host;

static void record(dp_plugin_ctx *ctx)
{
    char key[256];
    snprintf(key, sizeof(key), "hs.ran.%s", host->job_name(ctx));
    host->store_set(ctx, key, VERSION, strlen(VERSION));
}

static int work_create(dp_plugin_ctx *ctx, const dp_params *p, void **state)
{
    static const char *const known[] = {"ms", NULL};
    if (host->params_check_known(ctx, p, known) != 0)
        return -1;
    uint64_t ms = 0;
    if (host->param_duration_ms(p, "ms", &ms) < 0)
        return -1;
    *state = (void *)(uintptr_t)ms;
    return 0;
}

static dp_plugin_result work_run(dp_plugin_ctx *ctx, void *state)
{
    uint64_t ms = (uint64_t)(uintptr_t)state;
    if (ms && host->sleep_ms(ctx, ms) != 0) {
        host->set_error(ctx, 0, "cancelled");
        return DP_PLUGIN_ERROR;
    }
    record(ctx);
    return DP_PLUGIN_READY;
}

static dp_plugin_result block_run(dp_plugin_ctx *ctx, void *state)
{
    (void)state;
    size_t len;
    host->store_set(ctx, "hs.blocking", VERSION, strlen(VERSION));
    while (host->store_get(ctx, "hs.release", NULL, 0, &len) != 0) {
        if (host->sleep_ms(ctx, 2) != 0) {
            host->set_error(ctx, 0, "cancelled while blocking");
            return DP_PLUGIN_ERROR;
        }
    }
    record(ctx);
    return DP_PLUGIN_READY;
}

#ifndef HS_NO_EXTRA
static dp_plugin_result extra_run(dp_plugin_ctx *ctx, void *state)
{
    (void)state;
    record(ctx);
    return DP_PLUGIN_READY;
}
#endif

#ifdef HS_BAD_INIT
static int hs_init(char *err, size_t errlen)
{
    snprintf(err, errlen, "hs " VERSION " refuses to start (test)");
    return -1;
}
#else
#define hs_init NULL
#endif

static const dp_job_type work_type = {
    .struct_size = sizeof(dp_job_type), .name = "work", .create = work_create, .run = work_run};
static const dp_job_type block_type = {.struct_size = sizeof(dp_job_type), .name = "block", .run = block_run};
#ifndef HS_NO_EXTRA
static const dp_job_type extra_type = {.struct_size = sizeof(dp_job_type), .name = "extra", .run = extra_run};
static const dp_job_type *const types[] = {&work_type, &block_type, &extra_type, NULL};
#else
static const dp_job_type *const types[] = {&work_type, &block_type, NULL};
#endif

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
#ifdef HS_BAD_ABI
    .abi_major = 9,
#else
    .abi_major = DP_PLUGIN_ABI_MAJOR,
#endif
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "hs",
    .version = VERSION,
    .description = "hot-swap test plugin",
    .job_types = types,
    .init = hs_init,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    host = h;
    return &desc;
}
