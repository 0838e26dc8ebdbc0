/*
 * bad.c - broken test plugins, one per refusal of the loader. Built once per
 * BAD_* macro; PLUGIN_NAME is the file's NAME so that each one gets past
 * the checks before the one it breaks.
 */
#include <stdio.h>
#include <stdlib.h>

#include <daggerpool/plugin.h>

#ifndef PLUGIN_NAME
#error "PLUGIN_NAME must be defined"
#endif

static dp_plugin_result ok_run(dp_plugin_ctx *ctx, void *state)
{
    (void)ctx;
    (void)state;
    return DP_PLUGIN_READY;
}

static const dp_job_type one = {.struct_size = sizeof(dp_job_type), .name = "one", .run = ok_run};
#if defined(BAD_NOTYPE)
static const dp_job_type idle = {.struct_size = sizeof(dp_job_type), .name = "idle"};
static const dp_job_type *const types[] = {&one, &idle, NULL};
#elif defined(BAD_DUP)
static const dp_job_type one_again = {.struct_size = sizeof(dp_job_type), .name = "one", .run = ok_run};
static const dp_job_type *const types[] = {&one, &one_again, NULL};
#else
static const dp_job_type *const types[] = {&one, NULL};
#endif

#if defined(BAD_INIT)
static int bad_init(char *err, size_t errlen)
{
    snprintf(err, errlen, "database unreachable at db.example:5432");
    return -1;
}
#endif

static const dp_plugin_desc desc = {
#if defined(BAD_SIZE)
    .struct_size = 8,
#else
    .struct_size = sizeof(dp_plugin_desc),
#endif
#if defined(BAD_MAJOR)
    .abi_major = DP_PLUGIN_ABI_MAJOR + 1,
#else
    .abi_major = DP_PLUGIN_ABI_MAJOR,
#endif
#if defined(BAD_MINOR)
    .abi_minor = DP_PLUGIN_ABI_MINOR + 1,
#else
    .abi_minor = DP_PLUGIN_ABI_MINOR,
#endif
#if defined(BAD_NAME)
    .name = "somebody_else",
#else
    .name = PLUGIN_NAME,
#endif
    .version = "0.1.0",
    .job_types = types,
#if defined(BAD_INIT)
    .init = bad_init,
#endif
};

#if defined(BAD_NOENTRY)
/* Exports something, but not the entry point. */
DP_PLUGIN_EXPORT const dp_plugin_desc *not_the_entry(void);
const dp_plugin_desc *not_the_entry(void)
{
    return &desc;
}
#elif defined(BAD_V2)
/* A plugin of a future major: only dp_plugin_entry_v2. */
DP_PLUGIN_EXPORT const dp_plugin_desc *dp_plugin_entry_v2(const dp_host_api *h);
const dp_plugin_desc *dp_plugin_entry_v2(const dp_host_api *h)
{
    (void)h;
    return &desc;
}
#else
DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    (void)h;
#if defined(BAD_NULL)
    (void)&desc; /* declared like a real plugin's, but refused */
    return NULL;
#else
    return &desc;
#endif
}
#endif
