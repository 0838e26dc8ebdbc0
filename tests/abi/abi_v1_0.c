/*
 * abi_v1_0.c - a plugin built against the frozen v1.0 header
 * (tests/abi/v1.0/daggerpool/plugin.h), never against the current one. It
 * must keep loading and running in the current host: that is the ABI
 * promise. Its one job type calls every host function of 1.0 and fails,
 * naming the first one that misbehaved.
 */
#include <string.h>

#include <daggerpool/plugin.h>

#include "layout_v1_0.h"

static const dp_host_api *host;

#define EXPECT(cond)                                                                                                   \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "failed: %s", #cond);                                      \
            return DP_PLUGIN_ERROR;                                                                                    \
        }                                                                                                              \
    } while (0)

static int check_create(dp_plugin_ctx *ctx, const dp_params *p, void **state)
{
    static const char *const known[] = {"s", "i", "f", "b", "d", "l", "g", NULL};
    (void)state;
    return host->params_check_known(ctx, p, known);
}

static dp_plugin_result check_run(dp_plugin_ctx *ctx, void *state)
{
    (void)state;
    host->log(ctx, DP_PLUGIN_LOG_INFO, "frozen-abi plugin running in host %s", host->host_version);
    EXPECT(host->abi_major == 1);
    EXPECT(strcmp(host->job_name(ctx), "frozen") == 0);
    EXPECT(host->attempt(ctx) == 1);
    EXPECT(!host->is_cancelled(ctx));
    int64_t left = host->remaining_ms(ctx);
    EXPECT(left > 0 && left <= 60000);
    EXPECT(host->sleep_ms(ctx, 1) == 0);
    EXPECT(host->cancel_fd(ctx) >= 0);
    EXPECT(host->store_set(ctx, "abi.k", "value", 5) == 0);
    char buf[3];
    size_t len = 0;
    EXPECT(host->store_get(ctx, "abi.k", buf, sizeof(buf), &len) == 0);
    EXPECT(len == 5 && memcmp(buf, "val", 3) == 0);
    EXPECT(host->store_delete(ctx, "abi.k") == 0);
    EXPECT(host->store_delete(ctx, "abi.k") == 1);
    EXPECT(host->store_get(ctx, "abi.k", buf, sizeof(buf), &len) == 1);
    return DP_PLUGIN_READY;
}

static int params_create(dp_plugin_ctx *ctx, const dp_params *p, void **state)
{
    (void)state;
    const char *s = NULL, *item = NULL;
    int64_t i = 0;
    double f = 0;
    int b = 0;
    uint64_t d = 0;
    size_t n = 0;
    const dp_params *g = NULL;
    if (host->param_string(p, "s", &s) != DP_PARAM_OK || strcmp(s, "text") != 0 ||
        host->param_int(p, "i", &i) != DP_PARAM_OK || i != -7 || host->param_float(p, "f", &f) != DP_PARAM_OK ||
        f != 2.5 || host->param_bool(p, "b", &b) != DP_PARAM_OK || b != 1 ||
        host->param_duration_ms(p, "d", &d) != DP_PARAM_OK || d != 90000 ||
        host->param_list_count(p, "l", &n) != DP_PARAM_OK || n != 2 ||
        host->param_list_item(p, "l", 1, &item) != DP_PARAM_OK || strcmp(item, "y") != 0 ||
        host->param_group(p, "g", &g) != DP_PARAM_OK || host->param_count(g) != 1 ||
        strcmp(host->param_key_at(g, 0), "k") != 0 || host->param_string(p, "absent", &s) != DP_PARAM_ABSENT ||
        host->param_int(p, "s", &i) != DP_PARAM_WRONG_TYPE) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "a param getter misbehaved");
        return -1;
    }
    return 0;
}

static const dp_job_type check_type = {
    .struct_size = sizeof(dp_job_type), .name = "check", .create = check_create, .run = check_run};
static const dp_job_type params_type = {
    .struct_size = sizeof(dp_job_type), .name = "params", .create = params_create, .run = check_run};
static const dp_job_type *const types[] = {&check_type, &params_type, NULL};

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "abi_v1_0",
    .version = "1.0.0",
    .description = "built against the frozen ABI 1.0 header",
    .job_types = types,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    host = h;
    return &desc;
}
