/* queue.c - the ready queue: a flat array of slots, two counters, no lock
 * (queue.h).
 *
 * Slot values: 0 empty; id + 1 published; DP_QUEUE_WAIT a worker sleeps on
 * it (futex); DP_QUEUE_STOP the queue closed.
 *
 * Memory orders, and why:
 *  - A job is published by its slot's exchange (release) and taken by the
 *    load of that slot (acquire): whoever runs the job sees what the
 *    producer did before (its dependency's slot, a successor's counter).
 *  - Closing is a store-load handshake (Dekker): the closer stores `closed`
 *    then loads each worker's ticket; a waiting worker stores its ticket
 *    then loads `closed`. Both pairs are sequentially consistent, so at
 *    least one side sees the other: the closer sees the ticket (and stops
 *    that slot, waking the worker), or the worker sees `closed` (and
 *    leaves). With weaker orders both could read the old value and the
 *    worker would sleep forever.
 *  - The two counters only reserve slots and hand out tickets: relaxed. A
 *    slot below `tail` may still be empty (reserved, being published); a
 *    taker waits for it.
 */
#include "queue.h"

#include <assert.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bigmem.h"

/* Spins this many rounds on an empty slot before sleeping: a job pushed a
 * moment later (the common case on a busy pool: two workers on a grid hand
 * each other a job at every job) is then taken without two system calls.
 * Short, a few microseconds: a job that comes later than that mostly waited
 * for a descheduled producer, and on a loaded machine a longer spin kept a
 * CPU from it (bench/README.md, "Seventh session"). */
#define SPIN_ROUNDS 200

static long futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
    /* The kernel sees the plain word behind the atomic. */
    return syscall(SYS_futex, (uint32_t *)(uintptr_t)addr, op, val, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void dp__queue_init(dp_queue_t *q, _Atomic uint32_t *slot, size_t njobs, _Atomic size_t *ticket, unsigned nworkers)
{
    q->slot = slot;
    q->cap = njobs + nworkers;
    q->ticket = ticket;
    q->nworkers = nworkers;
    for (unsigned i = 0; i < nworkers; i++)
        atomic_init(&ticket[i * DP_QUEUE_TICKET_STRIDE], DP_QUEUE_NO_TICKET);
    atomic_init(&q->tail, 0);
    atomic_init(&q->head, 0);
    atomic_init(&q->closed, false);
    atomic_init(&q->faulted, 0);
}

/* Faults in the slots from the mark to DP_QUEUE_FAULT_AHEAD past `upto`
 * (the caller writes the slots below upto next). The mark moves before the
 * call, so two pushers never fault the same stretch, and one that finds it
 * moved writes at once: a page not faulted in yet just faults. Relaxed: the
 * mark only spares calls. */
static __attribute__((noinline)) void fault_ahead(dp_queue_t *q, size_t upto)
{
    size_t from = atomic_load_explicit(&q->faulted, memory_order_relaxed);
    while (from < upto) {
        size_t to = upto + DP_QUEUE_FAULT_AHEAD < q->cap ? upto + DP_QUEUE_FAULT_AHEAD : q->cap;
        if (atomic_compare_exchange_weak_explicit(&q->faulted, &from, to, memory_order_relaxed, memory_order_relaxed)) {
            dp__bigmem_prefault((void *)(uintptr_t)&q->slot[from], (to - from) * sizeof *q->slot);
            return;
        }
    }
}

void dp__queue_prefault(dp_queue_t *q, size_t n)
{
    fault_ahead(q, n < q->cap ? n : q->cap);
}

void dp__queue_open(dp_queue_t *q)
{
    /* The slots past the seeded ones are zero already (dp__queue_init).
     * Debug builds check it on small queues. */
#ifndef NDEBUG
    if (q->cap <= 4096)
        for (size_t i = atomic_load_explicit(&q->tail, memory_order_relaxed); i < q->cap; i++)
            assert(atomic_load_explicit(&q->slot[i], memory_order_relaxed) == 0);
#endif
    (void)q;
}

void dp__queue_clean(dp_queue_t *q)
{
    size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    size_t used = tail > head ? tail : head;
    if (used > q->cap)
        used = q->cap;
    for (size_t i = 0; i < used; i++)
        atomic_store_explicit(&q->slot[i], 0, memory_order_relaxed);
    /* The tickets too: a later run of a graph grown meanwhile, or with
     * more workers, lays its queue's slots over them. */
    for (unsigned i = 0; i < q->nworkers; i++)
        atomic_store_explicit(&q->ticket[i * DP_QUEUE_TICKET_STRIDE], 0, memory_order_relaxed);
}

size_t dp__queue_push(dp_queue_t *q, const uint32_t *ids, size_t n)
{
    /* Relaxed: reserves slots; each job is published by its exchange. */
    size_t t = atomic_fetch_add_explicit(&q->tail, n, memory_order_relaxed);
    /* Each job enters at most as often as the caller made room for
     * (dp__queue_init): the slots never run out. */
    assert(t + n <= q->cap - q->nworkers);
    if (__builtin_expect(t + n > atomic_load_explicit(&q->faulted, memory_order_relaxed), 0))
        fault_ahead(q, t + n);
    for (size_t i = 0; i < n; i++)
        /* Release: publishes the job (see the top of the file). */
        if (atomic_exchange_explicit(&q->slot[t + i], ids[i] + 1, memory_order_release) == DP_QUEUE_WAIT)
            futex(&q->slot[t + i], FUTEX_WAKE_PRIVATE, 1);
    return t + n;
}

/* Waits for slot t (a ticket worker `worker` holds) to be published.
 * Returns the job id + 1, or 0 when the queue closed. *waited: set when
 * the slot was still empty. */
static uint32_t wait_slot(dp_queue_t *q, unsigned worker, size_t t, bool *waited)
{
    _Atomic uint32_t *slot = &q->slot[t];
    _Atomic size_t *ticket = &q->ticket[worker * DP_QUEUE_TICKET_STRIDE];
    uint32_t v = atomic_load_explicit(slot, memory_order_acquire);
    if (v != 0 && v != DP_QUEUE_WAIT && v != DP_QUEUE_STOP)
        return v; /* the common case on a busy pool: no bookkeeping */
    /* Seq_cst: the worker's half of the closing handshake (ticket, then
     * `closed`). */
    atomic_store_explicit(ticket, t, memory_order_seq_cst);
    v = atomic_load_explicit(slot, memory_order_acquire);
    if (v == 0) {
        *waited = true;
        for (unsigned spin = 0; spin < SPIN_ROUNDS && v == 0; spin++) {
            if (atomic_load_explicit(&q->closed, memory_order_seq_cst))
                break;
            cpu_relax();
            v = atomic_load_explicit(slot, memory_order_acquire);
        }
    }
    while (v == 0 || v == DP_QUEUE_WAIT) {
        /* Seq_cst: after the ticket store (the handshake). */
        if (atomic_load_explicit(&q->closed, memory_order_seq_cst))
            break;
        uint32_t expected = 0;
        /* Acquire on failure: the slot was published (or stopped) meanwhile,
         * and the job is taken with what its producer did. */
        if (v == 0 && !atomic_compare_exchange_strong_explicit(slot, &expected, DP_QUEUE_WAIT, memory_order_acquire,
                                                               memory_order_acquire)) {
            v = expected;
            continue;
        }
        futex(slot, FUTEX_WAIT_PRIVATE, DP_QUEUE_WAIT);
        v = atomic_load_explicit(slot, memory_order_acquire);
    }
    /* Release: no order needed for correctness (a closer that reads the
     * stale ticket only stops a slot already taken, which nobody reads
     * again); release keeps it from sinking below the next ticket. */
    atomic_store_explicit(ticket, DP_QUEUE_NO_TICKET, memory_order_release);
    if (atomic_load_explicit(&q->closed, memory_order_acquire) || v == 0 || v == DP_QUEUE_WAIT || v == DP_QUEUE_STOP)
        return 0;
    return v;
}

/* One at a time by default: a worker holding several ready jobs holds them
 * back from idle workers. With max > 1 (a worker whose last job was short)
 * it takes a run of consecutive slots with one compare-and-swap instead, at
 * most a 2 * nworkers-th of what is queued: with no-op-sized jobs the
 * workers otherwise spend their time contending on the queue head and on
 * the cache lines of neighbouring slots and results, and two workers ran an
 * independent graph slower than one (bench/README.md). Every slot below
 * tail is reserved by a producer that is publishing it, so the wait for
 * each is brief. */
size_t dp__queue_pop(dp_queue_t *q, unsigned worker, uint32_t *ids, size_t max, bool *waited)
{
    size_t t = 0, n = 0;
    if (max > 1) {
        size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
        for (;;) {
            size_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
            size_t k = tail > h ? (tail - h) / (2 * (size_t)q->nworkers) : 0;
            if (k < 2)
                break;
            if (k > max)
                k = max;
            if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + k, memory_order_acq_rel,
                                                      memory_order_relaxed)) {
                t = h;
                n = k;
                break;
            }
        }
    }
    if (n == 0) {
        /* Relaxed: a ticket only names the slot to wait on. */
        t = atomic_fetch_add_explicit(&q->head, 1, memory_order_relaxed);
        n = 1;
    }
    /* At most one ticket per worker beyond the jobs: within the slots. */
    assert(t + n <= q->cap);
    for (size_t i = 0; i < n; i++) {
        uint32_t v = wait_slot(q, worker, t + i, waited);
        if (v == 0)
            return 0;
        ids[i] = v - 1;
    }
    return n;
}

void dp__queue_close(dp_queue_t *q, _Atomic unsigned *nstarted)
{
    /* Seq_cst: the closer's half of the handshake (`closed`, then the
     * tickets). */
    atomic_store_explicit(&q->closed, true, memory_order_seq_cst);
    /* Seq_cst, after `closed`: a worker counted after this load started
     * after it, and finds the queue closed. */
    unsigned n = atomic_load_explicit(nstarted, memory_order_seq_cst);
    for (unsigned i = 0; i < n; i++) {
        size_t t = atomic_load_explicit(&q->ticket[i * DP_QUEUE_TICKET_STRIDE], memory_order_seq_cst);
        if (t == DP_QUEUE_NO_TICKET)
            continue;
        /* Relaxed: the worker leaves on DP_QUEUE_STOP itself; the exchange
         * only has to see whether it sleeps. */
        if (atomic_exchange_explicit(&q->slot[t], DP_QUEUE_STOP, memory_order_relaxed) == DP_QUEUE_WAIT)
            futex(&q->slot[t], FUTEX_WAKE_PRIVATE, INT32_MAX);
    }
}
