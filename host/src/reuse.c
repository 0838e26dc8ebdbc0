/* reuse.c - jobs reused from an earlier run (reuse.h).
 *
 * Why the set is closed rather than taken as given: a reused job stands
 * for the output of its last run, which was made from its dependencies'
 * outputs then. If a dependency runs again, that output may change, so the
 * job must run again too, and so must everything below it (the rule of
 * make and ninja: a target is rebuilt when anything it depends on is).
 * Closing also keeps the run's bookkeeping simple: a reused job is never
 * counted down by a dependency that runs, so the workers need no check.
 */
#include "reuse.h"

#include <stdlib.h>

#include "dag.h"
#include "util.h"

int dp__reuse_flags(const dp_graph_t *g, const uint32_t *ids, size_t nids, unsigned char *flags, size_t *count,
                    char *err, size_t errlen)
{
    size_t n = g->njobs;
    *count = 0;
    for (size_t i = 0; i < nids; i++) {
        if (ids[i] >= n)
            return dp__seterr(err, errlen, DP_EINVAL,
                              "reused job id %u (entry %zu of opts.reused) is out of range: the graph has %zu jobs; "
                              "take ids from dp_graph_job_id after dp_graph_validate",
                              (unsigned)ids[i], i, n);
        flags[ids[i]] = DP_REUSE_YES;
    }
    uint32_t *stack = malloc((n ? n : 1) * sizeof *stack);
    if (!stack)
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    /* Every job that runs drops the reused jobs below it: a walk down the
     * successors from each, each job pushed at most once (a job is pushed
     * as it stops being reused, or at the start when it never was). */
    size_t top = 0;
    for (size_t j = 0; j < n; j++)
        if (flags[j] != DP_REUSE_YES)
            stack[top++] = (uint32_t)j;
    while (top) {
        uint32_t j = stack[--top];
        for (uint32_t k = g->succ_off[j]; k < g->succ_off[j + 1]; k++) {
            uint32_t s = g->succ_ids[k];
            if (flags[s] == DP_REUSE_YES) {
                flags[s] = DP_REUSE_DROPPED;
                stack[top++] = s;
            }
        }
    }
    free(stack);
    for (size_t j = 0; j < n; j++)
        *count += flags[j] == DP_REUSE_YES;
    return DP_OK;
}
