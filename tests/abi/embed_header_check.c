/* embed_header_check.c - <daggerpool/daggerpool.h>, the embedder's header,
 * compiles on its own as strict C99 and as C++ (see CMakeLists.txt), and
 * code written against an older release still builds: the enum tag
 * dp_outcome_kind (now dp_run_outcome) and DP_ERR_MAP expanded by the
 * embedder. */
#include <daggerpool/daggerpool.h>

int dp_embed_header_check(void);
int dp_embed_header_check(void)
{
    enum dp_outcome_kind old = DP_RUN_FAILED;
    dp_run_outcome_t *p = &old;
#define COUNT_CODE(name, value, message) +1
    int codes = 0 DP_ERR_MAP(COUNT_CODE);
#undef COUNT_CODE
    return (int)*p + codes + (int)DP_ENOJOB;
}
