/* result.h - what a finished run says (private parts): the result, built
 * from the run's record (record.h), never from the run itself. */
#ifndef DP_RESULT_H
#define DP_RESULT_H

#include <stdatomic.h>

#include "daggerpool/daggerpool.h"
#include "record.h"
#include "ticks.h"

struct dp_result {
    const dp_graph_t *g;
    size_t n;
    /* The run's per-job slots, handed over whole (error strings included):
     * the result copies nothing per job. dp_result_free gives the buffer
     * back to the graph for its next run. */
    dp_slotbuf_t *slotbuf;
    dp_tick_anchor_t a0; /* the run's start (its slots' ticks count from it) */
    uint64_t tick_end;   /* the run's end, in ticks */
    double ns_per_tick;
    /* The public per-job records (by id), made on first demand: a caller
     * that only asks for the outcome never pays for them. */
    _Atomic(dp_job_result_t *) jobs;
    dp_run_outcome_t outcome;
    bool timed_out, cancelled;
    char *first_error; /* owned */
    long first_not_ready;
    int64_t requeue_ms;
    int64_t duration_ms;
    dp_frontier_t *frontiers;
    size_t nfrontiers;
    dp_id_list_t boundary;
    unsigned char *reused; /* the run's reuse.h flags per job, or NULL: none reused */
    /* Per job its pool wait in ms + 1 (0: no pool, or never ready); NULL
     * for a graph without pools (prio.h). Owned. */
    uint32_t *pool_waits;
    uint8_t *why;      /* owned; NULL without rules (record.h) */
    int cleanup_after; /* DP__CLEANUP_* */
};

/* Builds the result of a finished run from its record, taking the
 * record's slots and first error whatever it returns (on failure they are
 * freed, the slots given back to the graph). NULL: no memory. */
dp_result_t *dp__result_build(dp_run_record_t *rec);

#endif /* DP_RESULT_H */
