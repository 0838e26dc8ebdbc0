/* reuse.h - jobs reused from an earlier run (dp_run_opts_t.reused): the
 * given ids as one flag per job, closed so that a job whose dependency
 * runs runs too. A run (run.c) and a plan (plan.c) read them the same way
 * through here, so that a plan says exactly what the run would reuse.
 */
#ifndef DP_REUSE_H
#define DP_REUSE_H

#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"

/* A job's flag. */
enum {
    DP_REUSE_NO = 0,      /* runs: not given */
    DP_REUSE_YES = 1,     /* reused: given, and every dependency reused */
    DP_REUSE_DROPPED = 2, /* given, but a dependency runs: it runs too */
};

/* Sets flags[j] (n bytes for the n jobs of g, validated; zero on entry)
 * for the ids given, then drops every given job below one that runs.
 * *count: the jobs reused in the end. DP_OK, or DP_EINVAL with err naming
 * the first id out of range (flags then undefined). */
int dp__reuse_flags(const dp_graph_t *g, const uint32_t *ids, size_t nids, unsigned char *flags, size_t *count,
                    char *err, size_t errlen);

#endif /* DP_REUSE_H */
