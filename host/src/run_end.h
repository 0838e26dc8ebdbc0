/* run_end.h - the end of a run (run_end.c): what the statuses the workers
 * left mean. Jobs held back by a not_ready job (or, keeping going, a failed
 * one) become skipped; then the outcome, first error, first not ready job
 * and requeue hint are decided, into the record that the result is built
 * from (record.h). On the calling thread, after every worker is joined.
 */
#ifndef DP_RUN_END_H
#define DP_RUN_END_H

#include "record.h"
#include "run.h"

/* Marks the skipped jobs (a DP_EV_JOB_SKIPPED event each) and fills rec,
 * which takes run->slotbuf (NULL after) and a malloc'd first error.
 * DP_OK, or DP_ENOMEM with rec empty and the run's slots left to it. */
int dp__run_end(dp_run_t *run, dp_run_record_t *rec);

/* The "run ended" log line, once the result res is made. */
void dp__run_end_log(dp_run_t *run, const dp_result_t *res);

#endif /* DP_RUN_END_H */
