/* header_check.c - <daggerpool/plugin.h> compiles on its own as strict C99
 * and as C++ (see CMakeLists.txt), and its macros work there. */
#include <daggerpool/plugin.h>

int dp_header_check(const dp_host_api *host);
int dp_header_check(const dp_host_api *host)
{
    return DP_HOST_HAS(host, store_delete) ? DP_PLUGIN_READY : DP_PLUGIN_ERROR;
}
