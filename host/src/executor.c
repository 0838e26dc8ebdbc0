/* executor.c - threads that outlive a run (executor.h).
 *
 * One mutex guards the executor: its idle list, every kept thread's task
 * slot and every task's done flag. A kept thread sleeps on its own
 * condition variable until it is handed a task (or the executor closes),
 * runs the task without the lock, then, under the lock, marks the task
 * done, wakes the waiters and puts itself back on the idle list. A waiter
 * sleeps on the executor's `done` condition variable. Hand-offs happen a
 * few times per run (one per worker), so a lock costs nothing that shows;
 * what the executor saves is pthread_create, a fresh stack and its page
 * faults per worker per run.
 */
#include "executor.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct kept {
    dp_executor_t *ex;
    pthread_t thread;
    pthread_cond_t wake;    /* a task arrived, or the executor closes */
    dp_exec_task_t *task;   /* under ex->mu; NULL while idle */
    struct kept *next_idle; /* under ex->mu */
    struct kept *next;      /* every kept thread, for dp_executor_free */
} kept_t;

struct dp_executor {
    pthread_mutex_t mu;
    pthread_cond_t done; /* some task was marked done */
    unsigned size;       /* the most threads kept */
    unsigned nthreads;   /* kept threads made so far (under mu) */
    kept_t *idle;        /* under mu */
    kept_t *all;         /* under mu */
    bool closing;        /* under mu */
};

static void *kept_main(void *p)
{
    kept_t *k = p;
    dp_executor_t *ex = k->ex;
    pthread_mutex_lock(&ex->mu);
    for (;;) {
        while (!k->task && !ex->closing)
            pthread_cond_wait(&k->wake, &ex->mu);
        dp_exec_task_t *t = k->task;
        if (!t)
            break; /* closing, and idle */
        pthread_mutex_unlock(&ex->mu);
        t->fn(t->arg);
        pthread_mutex_lock(&ex->mu);
        /* The last touch of the run's memory: the waiter, which may free
         * it, runs only once the lock is released. */
        t->done = true;
        k->task = NULL;
        k->next_idle = ex->idle;
        ex->idle = k;
        pthread_cond_broadcast(&ex->done);
    }
    pthread_mutex_unlock(&ex->mu);
    return NULL;
}

dp_executor_t *dp_executor_new(unsigned nthreads)
{
    if (nthreads < 1)
        return NULL;
    dp_executor_t *ex = calloc(1, sizeof *ex);
    if (!ex)
        return NULL;
    if (pthread_mutex_init(&ex->mu, NULL) != 0) {
        free(ex);
        return NULL;
    }
    if (pthread_cond_init(&ex->done, NULL) != 0) {
        pthread_mutex_destroy(&ex->mu);
        free(ex);
        return NULL;
    }
    ex->size = nthreads;
    return ex;
}

void dp_executor_free(dp_executor_t *ex)
{
    if (!ex)
        return;
    pthread_mutex_lock(&ex->mu);
    ex->closing = true;
    for (kept_t *k = ex->all; k; k = k->next)
        pthread_cond_signal(&k->wake);
    kept_t *all = ex->all;
    ex->all = NULL;
    pthread_mutex_unlock(&ex->mu);
    while (all) {
        kept_t *k = all;
        all = k->next;
        pthread_join(k->thread, NULL);
        pthread_cond_destroy(&k->wake);
        free(k);
    }
    pthread_cond_destroy(&ex->done);
    pthread_mutex_destroy(&ex->mu);
    free(ex);
}

unsigned dp_executor_threads(dp_executor_t *ex)
{
    if (!ex)
        return 0;
    pthread_mutex_lock(&ex->mu);
    unsigned n = ex->nthreads;
    pthread_mutex_unlock(&ex->mu);
    return n;
}

bool dp__executor_start(dp_executor_t *ex, dp_exec_task_t *task)
{
    task->done = false;
    pthread_mutex_lock(&ex->mu);
    bool ok = false;
    if (ex->closing) {
        /* no new work while dp_executor_free runs (a caller's mistake) */
    } else if (ex->idle) {
        kept_t *k = ex->idle;
        ex->idle = k->next_idle;
        k->task = task;
        pthread_cond_signal(&k->wake);
        ok = true;
    } else if (ex->nthreads < ex->size) {
        kept_t *k = calloc(1, sizeof *k);
        if (k && pthread_cond_init(&k->wake, NULL) == 0) {
            k->ex = ex;
            k->task = task;
            /* Under the lock: the new thread waits for it before it looks
             * at its task. */
            if (pthread_create(&k->thread, NULL, kept_main, k) == 0) {
                k->next = ex->all;
                ex->all = k;
                ex->nthreads++;
                ok = true;
            } else {
                pthread_cond_destroy(&k->wake);
                free(k);
            }
        } else {
            free(k);
        }
    }
    pthread_mutex_unlock(&ex->mu);
    return ok;
}

void dp__executor_wait(dp_executor_t *ex, dp_exec_task_t *task)
{
    pthread_mutex_lock(&ex->mu);
    while (!task->done)
        pthread_cond_wait(&ex->done, &ex->mu);
    pthread_mutex_unlock(&ex->mu);
}
