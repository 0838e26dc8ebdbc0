/* result.h - what a finished run says (private parts). */
#ifndef DP_RESULT_H
#define DP_RESULT_H

#include "daggerpool/daggerpool.h"

struct dp_result {
    const dp_graph_t *g;
    size_t n;
    dp_job_result_t *jobs;   /* by id; error strings owned */
    dp_run_outcome_t outcome;
    bool timed_out, cancelled;
    char *first_error;       /* owned */
    long first_not_ready;
    int64_t requeue_ms;
    int64_t duration_ms;
    dp_frontier_t *frontiers;
    size_t nfrontiers;
    dp_id_list_t boundary;
};

#endif
