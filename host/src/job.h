/* job.h - one job's life in a run (job.c): its attempts, the per-attempt
 * timeout and the deadline, readiness after run, retries with backoff.
 *
 * A job runs on a worker (dp__job_execute) until it ends or parks (its
 * readiness poll waits for the next probe, or it waits out a retry's
 * backoff); a parked job's steps then run through dp__job_step and the rest
 * of it through dp__job_resume, on whichever standing worker the lot
 * (park.h) picks. One job is only ever on
 * one thread at a time.
 */
#ifndef DP_JOB_H
#define DP_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "park.h"
#include "run.h"

/* Runs job `id` on worker `worker`: every attempt, readiness, retries with
 * backoff. Returns false when the job ended (its slot holds the final
 * status), true when it parked (dp__park_push): its worker must then stand
 * by (dp__park_stand). *clock is the worker's latest tick (ticks.h) when
 * only a few steps of bookkeeping (no wait) separate it from this call,
 * else 0; the job uses it as its start instead of reading the clock again,
 * and leaves its end there. *rng: the worker's jitter state. */
bool dp__job_execute(dp_run_t *run, uint32_t id, unsigned worker, uint64_t *rng, uint64_t *clock);

/* Runs job `id` to its end on the calling thread, the run's lot closed
 * (the cleanup phase of trigger rules, rules.c): every attempt, readiness
 * polled on this thread, backoffs waited here. */
void dp__job_run_final(dp_run_t *run, uint32_t id, uint64_t *rng);

/* The lot's step callback (dp_park_ops_t.step, arg the run): runs a parked
 * job's due step (one probe, or the end of its poll's or backoff's wait) on
 * worker `worker`.
 * True: it waits again (p->due_ns etc. say until when); false: its wait is
 * over and the rest runs through dp__job_resume on this thread. */
bool dp__job_step(void *run, dp_park_t *p, unsigned worker, uint64_t *now_ns);

/* Finishes the job whose wait dp__job_step ended, and any retries, on
 * worker `worker`. Returns true when it parked again, false when it ended. */
bool dp__job_resume(dp_run_t *run, dp_park_t *p, unsigned worker, uint64_t *rng, uint64_t *clock);

#endif /* DP_JOB_H */
