/* executor.h - threads kept between runs (executor.c; the public side is
 * dp_executor_t in daggerpool.h).
 *
 * A run given an executor (dp_run_opts_t.executor) starts its workers on
 * the executor's idle threads instead of new ones: no thread is created
 * (or its stack faulted in) per run, which a loop that runs a graph every
 * few seconds (`daggerpool watch`, a controller) would otherwise pay every
 * time. The executor makes its threads on demand, up to its size, and keeps
 * them; a run that wants more workers than it has idle starts the rest as
 * plain threads of its own, as without an executor. Several runs (of
 * different graphs) may share one executor at once.
 *
 * A task is what a kept thread runs for a run: one worker's whole life
 * (pool.c's worker_main). Its memory is the run's; the thread touches it
 * for the last time, under the executor's lock, when it marks it done.
 */
#ifndef DP_EXECUTOR_H
#define DP_EXECUTOR_H

#include <stdbool.h>

#include "daggerpool/daggerpool.h"

typedef struct dp_exec_task {
    void *(*fn)(void *arg);
    void *arg;
    bool done; /* under the executor's lock */
} dp_exec_task_t;

/* Hands task to an idle kept thread (making one if the executor has fewer
 * than its size). True: it runs there, and dp__executor_wait waits for it.
 * False: no thread to spare (all busy, the executor closing, or no thread
 * could be made): the caller runs it some other way. Any thread. */
bool dp__executor_start(dp_executor_t *ex, dp_exec_task_t *task);

/* Waits until a task that dp__executor_start took has returned; its thread
 * touches it no more after that. */
void dp__executor_wait(dp_executor_t *ex, dp_exec_task_t *task);

#endif /* DP_EXECUTOR_H */
