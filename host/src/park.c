/* park.c - the lot: jobs waiting parked between two steps, and the workers
 * that stand by for them (park.h).
 *
 * A job polling readiness spends nearly all its time waiting for its next
 * probe, and a job retrying waits out its backoff. It waits parked, not on
 * a thread of its own: it goes into the lot, keyed by when its next step is
 * due (the next probe, a period after the last one ended; the end of its
 * backoff; or a deadline, whichever is first), and its worker stands by. A
 * standing worker stands for one parked job: it takes no new job from the
 * ready queue until a parked job ends on it, so jobs in flight (running or
 * parked) never exceed max_concurrent_jobs.
 *
 * One standing worker keeps the time (the leader): it sleeps until the
 * earliest due step plus a little slack (for a poll an eighth of its
 * period, at most 5 ms), so that steps due close together run in one
 * wake-up, then runs every due step itself, one after the other. The
 * others (followers) sleep on a condition variable and cost nothing. One
 * wake-up per batch instead of one per probe is the point: 1000 jobs
 * polling every 100 ms woke 1000 threads 10 000 times a second (see
 * bench/README.md). What is left is mostly cache misses (a job probed
 * 100 ms ago is cold), hence the FIFO ring beside the heap (jobs re-park in
 * due order: O(1), read in order), batches of due jobs taken under one
 * lock, and prefetching.
 *
 * Whatever may take long does not run on the leader: a step of a job whose
 * step once took long (slow), and the rest of a job once its wait is over
 * (attempt_end, retries, run again). Before either, the leader hands the
 * time keeping to a follower and then runs it itself: so a job's check,
 * attempt_end and next attempt run on the thread that ran its last step,
 * and one job's callbacks never run concurrently (a job is in the lot or on
 * exactly one thread).
 *
 * Closing (fail-fast, cancellation, global timeout, dp__park_close) stops
 * the parking: nothing parks any more, and every standing worker takes
 * parked jobs at once (shutdown); their step sees the run's context done
 * and they end.
 *
 * One lock (mu), taken once per batch of steps, never while a callback
 * runs.
 */
#include "park.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* The time keeper takes at most this many due jobs at a time (one lock for
 * all of them, and the next one's state prefetched while one is stepped). */
#define STEP_BATCH 64

/* How much of a parked job's state (the dp_park_t and what its owner keeps
 * after it) to prefetch before its step. */
#define PREFETCH_BYTES 256

void dp__park_init(dp_parking_t *pk, size_t cap)
{
    memset(pk, 0, sizeof *pk);
    pk->cap = cap;
    pthread_mutex_init(&pk->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pk->leader_cv, &ca);
    pthread_cond_init(&pk->follow_cv, &ca);
    pthread_condattr_destroy(&ca);
}

void dp__park_destroy(dp_parking_t *pk)
{
    free(pk->heap);
    pk->heap = pk->fifo = NULL;
    pthread_cond_destroy(&pk->leader_cv);
    pthread_cond_destroy(&pk->follow_cv);
    pthread_mutex_destroy(&pk->mu);
}

static void prefetch_job(const dp_park_t *p)
{
    const char *q = (const char *)p;
    for (unsigned l = 0; l < PREFETCH_BYTES; l += 64)
        __builtin_prefetch(q + l);
}

/* ---- the heap and the ring (callers hold mu) --------------------------- */

static void heap_push(dp_parking_t *pk, dp_park_t *p)
{
    dp_park_ent_t *h = pk->heap;
    size_t i = pk->nheap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (h[up].due_ns <= p->due_ns)
            break;
        h[i] = h[up];
        i = up;
    }
    h[i].due_ns = p->due_ns;
    h[i].p = p;
}

static dp_park_t *heap_pop(dp_parking_t *pk)
{
    dp_park_ent_t *h = pk->heap;
    dp_park_t *top = h[0].p;
    dp_park_ent_t last = h[--pk->nheap];
    size_t n = pk->nheap, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h[c + 1].due_ns < h[c].due_ns)
            c++;
        if (last.due_ns <= h[c].due_ns)
            break;
        h[i] = h[c];
        i = c;
    }
    if (n)
        h[i] = last;
    return top;
}

static size_t parked_count(const dp_parking_t *pk)
{
    return pk->nheap + pk->nfifo;
}

/* The earliest parked entry (parked_count() > 0). */
static const dp_park_ent_t *peek(const dp_parking_t *pk)
{
    const dp_park_ent_t *f = pk->nfifo ? &pk->fifo[pk->fhead] : NULL;
    if (!pk->nheap)
        return f;
    if (f && f->due_ns <= pk->heap[0].due_ns)
        return f;
    return &pk->heap[0];
}

static dp_park_t *pop(dp_parking_t *pk)
{
    const dp_park_ent_t *e = peek(pk);
    if (e != &pk->heap[0] || !pk->nheap) {
        dp_park_t *p = e->p;
        pk->fhead = pk->fhead + 1 == pk->cap ? 0 : pk->fhead + 1;
        pk->nfifo--;
        return p;
    }
    return heap_pop(pk);
}

/* Into the ring while jobs come in due order, else the heap. */
static void push_locked(dp_parking_t *pk, dp_park_t *p)
{
    /* Every parked job has a worker standing by for it. */
    assert(parked_count(pk) < pk->cap);
    size_t cap = pk->cap;
    size_t tail = pk->fhead + pk->nfifo;
    if (tail >= cap)
        tail -= cap;
    size_t last = tail == 0 ? cap - 1 : tail - 1;
    if (pk->nfifo == 0 || pk->fifo[last].due_ns <= p->due_ns) {
        pk->fifo[tail].due_ns = p->due_ns;
        pk->fifo[tail].p = p;
        pk->nfifo++;
    } else {
        heap_push(pk, p);
    }
    /* The time keeper sleeps past this job's step: wake it to sleep less. */
    if (pk->sleep_until && dp__sat_add(p->due_ns, p->slack_ns) < pk->sleep_until)
        pthread_cond_signal(&pk->leader_cv);
}

bool dp__park_push(dp_parking_t *pk, dp_park_t *p)
{
    pthread_mutex_lock(&pk->mu);
    if (pk->closed) {
        pthread_mutex_unlock(&pk->mu);
        return false;
    }
    if (!pk->heap) {
        /* At most one parked job per worker, in the heap or the ring. */
        pk->heap = malloc(2 * pk->cap * sizeof *pk->heap);
        if (!pk->heap) {
            pthread_mutex_unlock(&pk->mu);
            return false;
        }
        pk->fifo = pk->heap + pk->cap;
    }
    push_locked(pk, p);
    pthread_mutex_unlock(&pk->mu);
    return true;
}

void dp__park_close(dp_parking_t *pk)
{
    pthread_mutex_lock(&pk->mu);
    pk->closed = true;
    pthread_cond_broadcast(&pk->leader_cv);
    pthread_cond_broadcast(&pk->follow_cv);
    pthread_mutex_unlock(&pk->mu);
}

/* ---- standing by ------------------------------------------------------- */

/* Gives up the time keeping (caller holds mu); a follower takes it over. */
static void resign(dp_parking_t *pk, bool *leader)
{
    if (!*leader)
        return;
    *leader = false;
    pk->has_leader = false;
    if (parked_count(pk))
        pthread_cond_signal(&pk->follow_cv);
}

/* The leader, nothing due: sleeps (mu held) until the earliest step is
 * due, plus its slack: steps due meanwhile run in the same wake-up. A park,
 * close or resignation may wake it earlier. */
static void sleep_until_due(dp_parking_t *pk)
{
    if (parked_count(pk)) {
        const dp_park_ent_t *e = peek(pk);
        uint64_t until = dp__sat_add(e->due_ns, e->p->slack_ns);
        struct timespec ts = {.tv_sec = (time_t)(until / 1000000000u), .tv_nsec = (long)(until % 1000000000u)};
        pk->sleep_until = until;
        pthread_cond_timedwait(&pk->leader_cv, &pk->mu, &ts);
    } else {
        pk->sleep_until = UINT64_MAX;
        pthread_cond_wait(&pk->leader_cv, &pk->mu);
    }
    pk->sleep_until = 0;
}

/* The leader runs the due steps of batch[0 .. n) (without mu), one after
 * the other. Stops at the first job that must run off the time keeping:
 * a slow one (*step_it: its step is still to run) or one whose wait is
 * over (its step ran). Returns that job, or NULL. Leaves in batch[0 ..
 * *back) the jobs to put back: those that wait again and those not reached
 * (still due: the next time keeper takes them at once). */
static dp_park_t *step_batch(dp_parking_t *pk, dp_park_t **batch, size_t n, unsigned worker, uint64_t now,
                             bool *step_it, size_t *back)
{
    dp_park_t *mine = NULL;
    size_t nb = 0, i = 0;
    for (; i < n; i++) {
        dp_park_t *p = batch[i];
        /* Memory, not the steps, is most of the cost here: the state of a
         * job probed 100 ms ago is cold. Fetch the second next job's state
         * and the next one's hint while this one runs. */
        if (i + 2 < n)
            prefetch_job(batch[i + 2]);
        if (i + 1 < n && batch[i + 1]->hint)
            __builtin_prefetch(batch[i + 1]->hint);
        if (p->slow) {
            mine = p;
            *step_it = true;
            i++;
            break;
        }
        /* now: the end of the previous step (steps run back to back, and a
         * clock read is not free: bench/README.md, "This machine"). */
        if (!pk->ops.step(pk->ops.arg, p, worker, &now)) {
            mine = p;
            i++;
            break;
        }
        batch[nb++] = p;
    }
    for (; i < n; i++)
        batch[nb++] = batch[i];
    *back = nb;
    return mine;
}

/* One round of the leader (mu held, and held again on return): runs the
 * steps due now, or sleeps until one is. Returns a job to run off the time
 * keeping (see step_batch), or NULL when the round is over. */
static dp_park_t *lead(dp_parking_t *pk, unsigned worker, bool *step_it)
{
    dp_park_t *batch[STEP_BATCH];
    uint64_t now = parked_count(pk) ? dp__now_ns() : 0;
    size_t n = 0;
    while (n < STEP_BATCH && parked_count(pk) && peek(pk)->due_ns <= now)
        batch[n++] = pop(pk);
    if (n == 0) {
        sleep_until_due(pk);
        return NULL;
    }
    for (size_t k = 0; k < n && k < 2; k++)
        prefetch_job(batch[k]);
    pthread_mutex_unlock(&pk->mu);
    size_t back;
    dp_park_t *mine = step_batch(pk, batch, n, worker, now, step_it, &back);
    pthread_mutex_lock(&pk->mu);
    for (size_t k = 0; k < back; k++)
        push_locked(pk, batch[k]);
    return mine;
}

/* Shutdown (mu held): any standing worker takes a parked job, one at a
 * time; NULL when none is left (and none will park: the lot is closed). */
static dp_park_t *shutdown_take(dp_parking_t *pk, bool *leader)
{
    if (*leader) {
        *leader = false;
        pk->has_leader = false;
    }
    return parked_count(pk) ? pop(pk) : NULL;
}

/* Runs a job taken off the lot on this worker (mu not held): its step
 * first when step_it, then, once its wait is over, the rest of the job.
 * Returns with mu held: true when the job ended here, false when it parked
 * again. */
static bool run_taken(dp_parking_t *pk, dp_park_t *p, bool step_it, unsigned worker, void *wstate)
{
    if (step_it) {
        uint64_t now = dp__now_ns();
        if (pk->ops.step(pk->ops.arg, p, worker, &now)) {
            pthread_mutex_lock(&pk->mu);
            push_locked(pk, p);
            return false;
        }
    }
    bool parked = pk->ops.resume(pk->ops.arg, p, wstate);
    pthread_mutex_lock(&pk->mu);
    return !parked;
}

bool dp__park_stand(dp_parking_t *pk, unsigned worker, void *wstate, uint32_t *id)
{
    bool leader = false;
    pthread_mutex_lock(&pk->mu);
    for (;;) {
        dp_park_t *mine;      /* to run on this thread, off the time keeping */
        bool step_it = false; /* ... from its next step (else from the end of its wait) */
        if (pk->closed) {
            mine = shutdown_take(pk, &leader);
            if (!mine) {
                /* Nothing parked and nothing will park: leave. */
                pthread_mutex_unlock(&pk->mu);
                return false;
            }
        } else {
            if (!pk->has_leader) {
                pk->has_leader = true;
                leader = true;
            }
            if (!leader) { /* a follower */
                pthread_cond_wait(&pk->follow_cv, &pk->mu);
                continue;
            }
            if (!(mine = lead(pk, worker, &step_it)))
                continue;
            resign(pk, &leader);
        }
        pthread_mutex_unlock(&pk->mu);
        uint32_t pid = mine->id; /* the job's state may be gone once it ends */
        if (!run_taken(pk, mine, step_it, worker, wstate))
            continue;
        if (pk->closed) {
            /* Stopping: what follows a job no longer matters, and this
             * worker stays to empty the lot. (Others may have left while
             * the time keeper held a batch: the jobs it put back must not
             * be left parked.) */
            continue;
        }
        pthread_mutex_unlock(&pk->mu);
        *id = pid;
        return true;
    }
}
