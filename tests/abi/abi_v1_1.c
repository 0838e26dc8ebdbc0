/*
 * abi_v1_1.c - a plugin built against the frozen v1.1 header
 * (tests/abi/v1.1/daggerpool/plugin.h: the header as released with ABI
 * 1.1, never edited), not the current one. It must keep loading and running
 * in a 1.2 host. Its job type uses what 1.1 added, the end hook, which
 * leaves in the store how the attempt ended.
 */
#include <string.h>

#include <daggerpool/plugin.h>

#include "layout_v1_0.h"

_Static_assert(DP_PLUGIN_ABI_MINOR == 1, "built against the frozen 1.1 header");

static const dp_host_api *host;

static dp_plugin_result v11_run(dp_plugin_ctx *ctx, void *state)
{
    (void)state;
    if (host->abi_major != 1 || host->abi_minor < 1 || !host->job_name(ctx) ||
        host->store_set(ctx, "abi11.run", "1", 1) != 0) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "a 1.0 host function misbehaved");
        return DP_PLUGIN_ERROR;
    }
    return DP_PLUGIN_READY;
}

static void v11_end(dp_plugin_ctx *ctx, void *state)
{
    (void)state;
    const char *how = host->is_cancelled(ctx) ? "cut" : "done";
    host->store_set(ctx, "abi11.end", how, strlen(how));
}

static const dp_job_type end_type = {.struct_size = sizeof(dp_job_type), .name = "end", .run = v11_run, .end = v11_end};
static const dp_job_type *const types[] = {&end_type, NULL};

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "abi_v1_1",
    .version = "1.1.0",
    .description = "built against the frozen ABI 1.1 header",
    .job_types = types,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    host = h;
    return &desc;
}
