/*
 * lean.c - a test plugin with a DP_JOB_TYPE_STATELESS type, built twice
 * (LEAN_VERSION "1.0.0" in tp/v1 and "2.0.0" in tp/v2) for the hot swap
 * between attempts.
 *
 *   lean.tick   stateless: create only refuses params; run fails while the
 *               store key "lean.fail" is "*" or this version, and says so under
 *               "lean.ran" (VERSION, attempt) and its own snapshot
 *               ("dp.running/JOB") under "lean.snap"; has a destroy.
 *
 * create, run and destroy append "create VERSION" / "run VERSION ATTEMPT" /
 * "destroy VERSION" to the file named by $LEAN_TRACE (if set): the test
 * counts them (a trace only; the job cannot notice it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <daggerpool/plugin.h>

#ifndef LEAN_VERSION
#define LEAN_VERSION "1.0.0"
#endif

static const dp_host_api *host;

static void trace(const char *what, unsigned attempt)
{
    const char *path = getenv("LEAN_TRACE");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (!f)
        return;
    if (attempt)
        fprintf(f, "%s %s %u\n", what, LEAN_VERSION, attempt);
    else
        fprintf(f, "%s %s\n", what, LEAN_VERSION);
    fclose(f);
}

static int tick_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {NULL};
    (void)state;
    trace("create", 0);
    return host->params_check_known(ctx, params, known);
}

static dp_plugin_result tick_run(dp_plugin_ctx *ctx, void *state)
{
    if (state) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "stateless, but run got a state");
        return DP_PLUGIN_ERROR;
    }
    unsigned attempt = host->attempt(ctx);
    trace("run", attempt);
    char ran[64];
    int n = snprintf(ran, sizeof ran, "%s %u", LEAN_VERSION, attempt);
    host->store_set(ctx, "lean.ran", ran, (size_t)n);
    /* The host's snapshot of this job, as a plugin sees it, under "lean.snap". */
    char key[256], snap[128];
    size_t slen = 0;
    snprintf(key, sizeof key, "dp.running/%s", host->job_name(ctx));
    if (host->store_get(ctx, key, snap, sizeof snap - 1, &slen) == 0 && slen < sizeof snap)
        host->store_set(ctx, "lean.snap", snap, slen);
    char fail[32];
    size_t len = 0;
    if (host->store_get(ctx, "lean.fail", fail, sizeof fail - 1, &len) == 0 && len < sizeof fail) {
        fail[len] = '\0';
        if (strcmp(fail, "*") == 0 || strcmp(fail, LEAN_VERSION) == 0) {
            host->set_error(ctx, 0, "lean.fail is %s", fail);
            return DP_PLUGIN_ERROR;
        }
    }
    return DP_PLUGIN_READY;
}

static void tick_destroy(void *state)
{
    (void)state;
    trace("destroy", 0);
}

static const dp_job_type tick_type = {
    .struct_size = sizeof(dp_job_type),
    .name = "tick",
    .create = tick_create,
    .run = tick_run,
    .destroy = tick_destroy,
    .flags = DP_JOB_TYPE_STATELESS,
};

static const dp_job_type *const types[] = {&tick_type, NULL};

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "lean",
    .version = LEAN_VERSION,
    .description = "test plugin: a stateless job type",
    .job_types = types,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    host = h;
    return &desc;
}
