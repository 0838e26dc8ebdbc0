/* queue.h - the ready queue of a run: jobs whose dependencies all
 * succeeded, waiting for a worker (queue.c).
 *
 * Each job enters it at most once per run, so it is a flat array with two
 * counters and no wrap-around: a producer reserves slots by advancing
 * `tail` and publishes each job there; an idle worker takes a ticket by
 * advancing `head` and waits for its slot to be published. No lock: only
 * atomics, and a futex when the wait is long. A worker holding a ticket is
 * idle, so at most one ticket per worker is outstanding and the array needs
 * only njobs + nworkers slots.
 *
 * Closing the queue (dp__queue_close) is how a run stops its workers: the
 * idle ones wake and leave, the busy ones see it after their job.
 */
#ifndef DP_QUEUE_H
#define DP_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What dp__queue_close wakes a worker with, and what a worker that sleeps
 * on its slot marks it with (so that the producer knows to wake it and
 * otherwise skips the system call). Published slots hold id + 1, empty ones
 * 0. */
#define DP_QUEUE_WAIT UINT32_MAX
#define DP_QUEUE_STOP (UINT32_MAX - 1)
#define DP_QUEUE_NO_TICKET SIZE_MAX

/* Tickets sit a cache line apart: each is written by its own worker
 * whenever it waits, and neighbours would bounce one line between them. */
#define DP_QUEUE_TICKET_STRIDE (64 / sizeof(size_t))

typedef struct dp_queue {
    /* Set by dp__queue_init, read-only while workers run. */
    _Atomic uint32_t *slot; /* cap slots (the caller's memory) */
    size_t cap;             /* njobs + nworkers */
    _Atomic size_t *ticket; /* per worker (every DP_QUEUE_TICKET_STRIDE-th): the slot it
                              * waits on, or DP_QUEUE_NO_TICKET */
    unsigned nworkers;      /* tickets */
    /* Slots below it were faulted in ahead this run (dp__queue_prefault);
     * a push past it faults in the next stretch. Written once per
     * DP_QUEUE_FAULT_AHEAD slots. */
    _Atomic size_t faulted;
    /* Atomic, any thread. Read before every job, written once a run: with
     * the read-only fields, away from the counters. */
    atomic_bool closed; /* the run is stopping: workers leave */
    /* Each counter on a cache line of its own: a worker taking jobs writes
     * `head`, one publishing writes `tail`, and a line shared with what
     * every job reads made each write cost the other workers a miss
     * (bench/README.md, "Session 14"). The queue's holder is allocated
     * aligned (run.c). */
    _Alignas(64) _Atomic size_t tail; /* next slot a producer reserves */
    _Alignas(64) _Atomic size_t head; /* next ticket an idle worker takes */
} dp_queue_t;

/* Sets q up over `slot` (room for njobs + nworkers, all zero: a fresh
 * zeroed buffer, or one a previous run left with dp__queue_clean; njobs:
 * how many pushes the run can make, the number of its jobs, or twice that
 * in a run of pool lines, prio.h) and
 * `ticket` (room for nworkers * DP_QUEUE_TICKET_STRIDE), empty and open.
 * Before any worker starts; then dp__queue_seed for each job ready at the
 * start, then dp__queue_open. */
void dp__queue_init(dp_queue_t *q, _Atomic uint32_t *slot, size_t njobs, _Atomic size_t *ticket, unsigned nworkers);

/* The first n slots are about to be written (the jobs seeded next): faulted
 * in by one system call (bigmem.h) rather than a page fault each, and
 * pushes fault in the slots after them DP_QUEUE_FAULT_AHEAD at a time as
 * they reach them. A run over memory a run before used finds the pages
 * there, and each call is a page walk. */
void dp__queue_prefault(dp_queue_t *q, size_t n);
#define DP_QUEUE_FAULT_AHEAD ((size_t)16384) /* slots: 64 KiB */

/* Publishes job `id` before any worker starts (plain stores). */
static inline void dp__queue_seed(dp_queue_t *q, uint32_t id)
{
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    atomic_init(&q->slot[t], id + 1);
    atomic_init(&q->tail, t + 1);
}

/* Opens the queue for the workers (the seeded jobs are in). Before any
 * worker starts. */
void dp__queue_open(dp_queue_t *q);

/* Zeroes every slot the run used (those below the larger of tail and
 * head) and the tickets, so that the next run over the same memory starts
 * from zero slots without clearing them all, whatever its size and
 * workers: a run whose jobs mostly skip the queue (a chain) touches a page
 * or two of it, not njobs * 4 bytes. After the workers are joined, or
 * when the run's set-up failed after dp__queue_init. */
void dp__queue_clean(dp_queue_t *q);

/* Publishes n ready jobs; wakes only the workers asleep on their slots.
 * Any thread. Returns the tail after them (for dp__queue_unclaimed). */
size_t dp__queue_push(dp_queue_t *q, const uint32_t *ids, size_t n);

/* Takes up to max ready jobs into ids (worker `worker`), waiting while
 * there is none. Returns how many; 0 when the queue closed. *waited: set
 * when it had to wait. More than one only when max > 1 and many are queued
 * (see queue.c). */
size_t dp__queue_pop(dp_queue_t *q, unsigned worker, uint32_t *ids, size_t max, bool *waited);

/* Closes the queue: workers that wait on a slot wake and leave, the others
 * see it at their next look. *nstarted: how many workers (indices from 0)
 * may hold a ticket, read after closing (queue.c says why). Any thread;
 * idempotent. */
void dp__queue_close(dp_queue_t *q, _Atomic unsigned *nstarted);

/* Whether the queue closed (acquire: what the closer did before is seen). */
static inline bool dp__queue_closed(const dp_queue_t *q)
{
    return atomic_load_explicit(&q->closed, memory_order_acquire);
}

/* Jobs published up to slot `tail` that no idle worker has claimed yet (a
 * stale head only overestimates). */
static inline size_t dp__queue_unclaimed(const dp_queue_t *q, size_t tail)
{
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    return head < tail ? tail - head : 0;
}

/* The current tail (relaxed: a hint for starting workers). */
static inline size_t dp__queue_tail(const dp_queue_t *q)
{
    return atomic_load_explicit(&q->tail, memory_order_relaxed);
}

#endif /* DP_QUEUE_H */
