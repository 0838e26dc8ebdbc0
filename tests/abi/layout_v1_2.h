/* layout_v1_2.h - what ABI 1.1 and 1.2 appended, frozen as static asserts
 * on LP64 (layout_v1_0.h has the rest; never edit a number). Included after
 * a <daggerpool/plugin.h> of minor 2 or later. */
#ifndef DP_LAYOUT_V1_2_H
#define DP_LAYOUT_V1_2_H

#include <stddef.h>

#if defined(__LP64__) || defined(_LP64)
/* 1.1: the job type's end hook. */
_Static_assert(offsetof(dp_job_type, end) == 56, "dp_job_type.end moved");
_Static_assert(sizeof(dp_job_type) >= 64, "dp_job_type shrank");
/* 1.2: the host's retry_after, right after the 1.0 table. */
_Static_assert(offsetof(dp_host_api, retry_after) == 192, "dp_host_api.retry_after moved");
_Static_assert(sizeof(dp_host_api) >= 200, "dp_host_api shrank");
#endif

_Static_assert(DP_PLUGIN_ABI_MAJOR == 1 && DP_PLUGIN_ABI_MINOR >= 2, "layout_v1_2.h needs a 1.2 header");

#endif
