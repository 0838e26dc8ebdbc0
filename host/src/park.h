/* park.h - jobs waiting parked on a run's timer heap, not on a thread of
 * their own (park.c): a readiness poll between two probes, a retry's
 * backoff.
 *
 * A parked job is a dp_park_t, embedded by its owner (job.c) as the first
 * member of the job's state; the lot knows nothing else of jobs and runs
 * their steps through two callbacks (dp_park_ops_t). Every parked job has a
 * worker standing by for it (dp__park_stand), so jobs in flight, running or
 * parked, never exceed the run's worker bound.
 */
#ifndef DP_PARK_H
#define DP_PARK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A parked job. Written by its owner while it runs the job, read by the
 * lot while it is parked (under the lot's lock, or by the one worker that
 * took it off). */
typedef struct dp_park {
    uint64_t due_ns;   /* its next step is due (CLOCK_MONOTONIC) */
    uint64_t slack_ns; /* how late the step may run, so that due steps coalesce */
    const void *hint;  /* memory the step reads besides the job's state (prefetched) */
    uint32_t id;       /* the job */
    bool slow;         /* its last step took long: never run it on the time keeper */
} dp_park_t;

/* How the lot runs a parked job's steps (park.c says on which thread). */
typedef struct dp_park_ops {
    /* Runs p's due step on worker `worker` (*now_ns: a fresh clock reading;
     * on return, the clock after the step). True: it waits again
     * (p->due_ns etc. say until when); false: its wait is over and the
     * rest of the job runs through `resume` on this thread. */
    bool (*step)(void *arg, dp_park_t *p, unsigned worker, uint64_t *now_ns);
    /* Runs the rest of p's job on the calling worker (`worker`: what the
     * worker passed to dp__park_stand) until it ends (false) or parks again
     * through dp__park_push (true). */
    bool (*resume)(void *arg, dp_park_t *p, void *worker);
    void *arg;
} dp_park_ops_t;

typedef struct dp_park_ent {
    uint64_t due_ns;
    dp_park_t *p;
} dp_park_ent_t;

/* The lot: a min-heap of parked jobs by due time, and beside it a FIFO
 * ring for jobs that park in due order (the common case: each re-parks a
 * period after its step): O(1), and read in order. */
typedef struct dp_parking {
    dp_park_ops_t ops; /* set by the lot's owner before anything parks */
    size_t cap;        /* set at init: parked jobs at most, one per worker */
    /* Under mu. */
    pthread_mutex_t mu;
    pthread_cond_t leader_cv; /* the time keeper sleeps here */
    pthread_cond_t follow_cv; /* the other standing workers */
    dp_park_ent_t *heap;      /* capacity cap, made on the first park */
    size_t nheap;
    dp_park_ent_t *fifo; /* capacity cap */
    size_t fhead, nfifo;
    uint64_t sleep_until; /* the time keeper sleeps until this; 0: awake */
    bool has_leader;      /* a standing worker keeps the time */
    bool closed;          /* stopping: nothing parks, everything is due */
} dp_parking_t;

/* An empty, open lot for up to cap parked jobs (cap >= 1). Its owner sets
 * pk->ops before anything parks. */
void dp__park_init(dp_parking_t *pk, size_t cap);
void dp__park_destroy(dp_parking_t *pk);

/* Parks p until p->due_ns. False: not parked (the lot is closed, or no
 * memory): the caller waits on its own thread. Once parked, the job
 * belongs to the lot: its caller must not touch it, and its worker stands
 * by (dp__park_stand). */
bool dp__park_push(dp_parking_t *pk, dp_park_t *p);

/* The worker whose job parked stands by until a parked job ends on it:
 * returns true with *id that job, or false when the lot closed and nothing
 * is left to do. `worker`: the worker's index (for ops->step) and `wstate`
 * its state (for ops->resume). */
bool dp__park_stand(dp_parking_t *pk, unsigned worker, void *wstate, uint32_t *id);

/* Closes the lot: nothing parks any more, and every standing worker takes
 * parked jobs at once. Any thread; idempotent. */
void dp__park_close(dp_parking_t *pk);

#endif /* DP_PARK_H */
