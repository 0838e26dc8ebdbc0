/*
 * abi_v1_2.c - a plugin of ABI 1.2 (the current header) that uses what 1.2
 * added, retry_after, only where the host has it (DP_HOST_HAS): it works
 * with a 1.1 host too, whose table ends before retry_after. Job type
 * "suggest": its first attempt fails suggesting a retry in `after` ms
 * (param, default 50); later attempts succeed. On a host without
 * retry_after it fails the same way and says so.
 */
#include <stdlib.h>

#include <daggerpool/plugin.h>

static const dp_host_api *host;

static int suggest_create(dp_plugin_ctx *ctx, const dp_params *p, void **state)
{
    static const char *const known[] = {"after", NULL};
    int64_t *after = malloc(sizeof *after);
    if (!after) {
        host->set_error(ctx, 0, "out of memory");
        return -1;
    }
    *after = 50;
    if (host->params_check_known(ctx, p, known) != 0 || host->param_int(p, "after", after) < 0) {
        free(after);
        return -1;
    }
    *state = after;
    return 0;
}

static dp_plugin_result suggest_run(dp_plugin_ctx *ctx, void *state)
{
    int64_t after = *(int64_t *)state;
    if (host->attempt(ctx) > 1)
        return DP_PLUGIN_READY;
    if (!DP_HOST_HAS(host, retry_after)) {
        host->set_error(ctx, 0, "not yet (host without retry_after: its backoff decides)");
        return DP_PLUGIN_ERROR;
    }
    host->retry_after(ctx, (uint64_t)after);
    host->set_error(ctx, 0, "not yet (try again in %lld ms)", (long long)after);
    return DP_PLUGIN_ERROR;
}

static void suggest_destroy(void *state)
{
    free(state);
}

static const dp_job_type suggest_type = {.struct_size = sizeof(dp_job_type),
                                         .name = "suggest",
                                         .create = suggest_create,
                                         .run = suggest_run,
                                         .destroy = suggest_destroy};
static const dp_job_type *const types[] = {&suggest_type, NULL};

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "abi_v1_2",
    .version = "1.2.0",
    .description = "ABI 1.2: retry_after where the host has it",
    .job_types = types,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    host = h;
    return &desc;
}
