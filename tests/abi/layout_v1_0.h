/* layout_v1_0.h - the frozen layout of plugin ABI 1.0 on LP64, as static
 * asserts. Included after a <daggerpool/plugin.h> (the current one by
 * test_abi.c, the frozen v1.0 copy by abi_v1_0.c), so both must agree with
 * the numbers below. A change here is an ABI break: never edit a number;
 * later minors add asserts for the fields they append. */
#ifndef DP_LAYOUT_V1_0_H
#define DP_LAYOUT_V1_0_H

#include <stddef.h>

#if defined(__LP64__) || defined(_LP64)
#define DP_ABI_AT(type, field, off) _Static_assert(offsetof(type, field) == (off), #type "." #field " moved")

/* dp_host_api: the host's table. */
DP_ABI_AT(dp_host_api, struct_size, 0);
DP_ABI_AT(dp_host_api, abi_major, 4);
DP_ABI_AT(dp_host_api, abi_minor, 6);
DP_ABI_AT(dp_host_api, host_version, 8);
DP_ABI_AT(dp_host_api, log, 16);
DP_ABI_AT(dp_host_api, set_error, 24);
DP_ABI_AT(dp_host_api, job_name, 32);
DP_ABI_AT(dp_host_api, attempt, 40);
DP_ABI_AT(dp_host_api, is_cancelled, 48);
DP_ABI_AT(dp_host_api, remaining_ms, 56);
DP_ABI_AT(dp_host_api, sleep_ms, 64);
DP_ABI_AT(dp_host_api, cancel_fd, 72);
DP_ABI_AT(dp_host_api, param_string, 80);
DP_ABI_AT(dp_host_api, param_int, 88);
DP_ABI_AT(dp_host_api, param_float, 96);
DP_ABI_AT(dp_host_api, param_bool, 104);
DP_ABI_AT(dp_host_api, param_duration_ms, 112);
DP_ABI_AT(dp_host_api, param_list_count, 120);
DP_ABI_AT(dp_host_api, param_list_item, 128);
DP_ABI_AT(dp_host_api, param_group, 136);
DP_ABI_AT(dp_host_api, param_count, 144);
DP_ABI_AT(dp_host_api, param_key_at, 152);
DP_ABI_AT(dp_host_api, params_check_known, 160);
DP_ABI_AT(dp_host_api, store_set, 168);
DP_ABI_AT(dp_host_api, store_get, 176);
DP_ABI_AT(dp_host_api, store_delete, 184);
/* 1.0 ends here; later minors only make it larger. */
_Static_assert(sizeof(dp_host_api) >= 192, "dp_host_api shrank");

/* dp_job_type. */
DP_ABI_AT(dp_job_type, struct_size, 0);
DP_ABI_AT(dp_job_type, name, 8);
DP_ABI_AT(dp_job_type, description, 16);
DP_ABI_AT(dp_job_type, create, 24);
DP_ABI_AT(dp_job_type, run, 32);
DP_ABI_AT(dp_job_type, check, 40);
DP_ABI_AT(dp_job_type, destroy, 48);
_Static_assert(sizeof(dp_job_type) >= 56, "dp_job_type shrank");

/* dp_plugin_desc. */
DP_ABI_AT(dp_plugin_desc, struct_size, 0);
DP_ABI_AT(dp_plugin_desc, abi_major, 4);
DP_ABI_AT(dp_plugin_desc, abi_minor, 6);
DP_ABI_AT(dp_plugin_desc, name, 8);
DP_ABI_AT(dp_plugin_desc, version, 16);
DP_ABI_AT(dp_plugin_desc, description, 24);
DP_ABI_AT(dp_plugin_desc, job_types, 32);
DP_ABI_AT(dp_plugin_desc, init, 40);
DP_ABI_AT(dp_plugin_desc, fini, 48);
_Static_assert(sizeof(dp_plugin_desc) >= 56, "dp_plugin_desc shrank");
#endif

/* Values, on every platform. */
_Static_assert(DP_PLUGIN_ABI_MAJOR == 1, "another major is another entry symbol");
_Static_assert(DP_PLUGIN_READY == 0 && DP_PLUGIN_NOT_READY == 1 && DP_PLUGIN_ERROR == 2, "results renumbered");
_Static_assert(DP_PLUGIN_LOG_ERROR == 0 && DP_PLUGIN_LOG_WARN == 1 && DP_PLUGIN_LOG_INFO == 2 &&
                   DP_PLUGIN_LOG_DEBUG == 3,
               "log levels renumbered");
_Static_assert(DP_PLUGIN_ERROR_PERMANENT == 1u, "error flags renumbered");
_Static_assert(DP_PARAM_OK == 0 && DP_PARAM_ABSENT == 1 && DP_PARAM_WRONG_TYPE == -1 && DP_PARAM_BAD_VALUE == -2,
               "param codes renumbered");

#endif
