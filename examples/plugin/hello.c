/*
 * hello.c - a complete daggerpool plugin: one job type, hello.greet, that
 * logs a greeting and is ready. Build it with the Makefile (pkg-config) or
 * the CMakeLists.txt (find_package) beside it, against an installed SDK.
 *
 *   jobs = ( { name = "hi"; type = "hello.greet"; params = { name = "world"; }; } );
 */
#include <stdlib.h>

#include <daggerpool/plugin.h>

static const dp_host_api *host;

static int greet_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {"name", NULL};
    const char *name = "world";
    if (host->params_check_known(ctx, params, known) != 0 || host->param_string(params, "name", &name) < 0)
        return -1;                    /* the host reports which param and why */
    *state = (void *)(uintptr_t)name; /* the params outlive the state */
    return 0;
}

static dp_plugin_result greet_run(dp_plugin_ctx *ctx, void *state)
{
    host->log(ctx, DP_PLUGIN_LOG_INFO, "hello, %s", (const char *)state);
    return DP_PLUGIN_READY;
}

static const dp_job_type greet = {
    .struct_size = sizeof(dp_job_type),
    .name = "greet",
    .description = "logs a greeting",
    .create = greet_create,
    .run = greet_run,
};

static const dp_job_type *const types[] = {&greet, NULL};

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "hello",
    .version = "1.0.0",
    .description = "an example plugin",
    .job_types = types,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    host = h;
    return &desc;
}
