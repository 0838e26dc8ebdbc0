/*
 * fs.c - the fs plugin: readiness on the file system.
 *
 *   fs.exists  ready once `path` exists (file, directory or anything else;
 *              a symlink counts if its target exists). Missing is not
 *              ready; any other failure to look (permission denied, a loop)
 *              is an error, since waiting would not fix it.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <daggerpool/plugin.h>

static const dp_host_api *host;

static int exists_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {"path", NULL};
    if (host->params_check_known(ctx, params, known) != 0)
        return -1;
    const char *path = NULL;
    int rc = host->param_string(params, "path", &path);
    if (rc < 0)
        return -1;
    if (rc == DP_PARAM_ABSENT || !*path) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT,
                        "fs.exists needs a non-empty `path` param, e.g. path = \"/var/run/app.pid\"");
        return -1;
    }
    /* The params outlive the state, so the state can be the string. */
    *state = (void *)(uintptr_t)path;
    return 0;
}

static dp_plugin_result exists_check(dp_plugin_ctx *ctx, void *state)
{
    const char *path = state;
    struct stat st;
    if (stat(path, &st) == 0)
        return DP_PLUGIN_READY;
    if (errno == ENOENT || errno == ENOTDIR) {
        host->log(ctx, DP_PLUGIN_LOG_DEBUG, "%s does not exist yet", path);
        return DP_PLUGIN_NOT_READY;
    }
    host->set_error(ctx, 0, "cannot check %s: %s", path, strerror(errno));
    return DP_PLUGIN_ERROR;
}

static const dp_job_type exists_type = {
    .struct_size = sizeof(dp_job_type),
    .name = "exists",
    .description = "ready once `path` exists",
    .create = exists_create,
    .check = exists_check,
};

static const dp_job_type *const types[] = {&exists_type, NULL};

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "fs",
    .version = "1.0.0",
    .description = "file system readiness: exists",
    .job_types = types,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    host = h;
    return &desc;
}
