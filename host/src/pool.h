/* pool.h - the worker pool that runs a graph (pool.c).
 *
 * The pool's entry point is public: dp_graph_run (daggerpool.h). It sets up
 * a run (run.h), starts worker threads on demand up to
 * max_concurrent_jobs, supervises from the calling thread until nothing is
 * queued or running or the run's context is done, joins the workers, and
 * makes the result from the run's end (run_end.h, result.h).
 *
 * Threads: the caller (supervisor: start, wait, join, end), the workers
 * (take ready jobs from the queue, run them through job.c, count down
 * successors, stand by for parked jobs). Nothing here is private to other
 * files: pool.c is the top of the run's modules, and no other includes it.
 */
#ifndef DP_POOL_H
#define DP_POOL_H

#include "daggerpool/daggerpool.h"

#endif /* DP_POOL_H */
