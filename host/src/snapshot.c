/* snapshot.c - a run's snapshots of its running jobs, made when the store
 * is read (snapshot.h says why). */
#include "snapshot.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const phase_names[] = {NULL, "run", "readiness", "backoff"};

/* A consistent copy of entry e (seqlock read): false when the job is not
 * in progress. */
static bool read_entry(const dp_snapshot_t *e, unsigned *attempt, unsigned *phase, uint64_t *tick)
{
    dp_snapshot_t *w = (dp_snapshot_t *)(uintptr_t)e;
    for (unsigned spins = 0;; spins++) {
        /* seq_cst: after a reader's frozen (view_each), see snapshot.h. */
        uint32_t q1 = atomic_load_explicit(&w->seq, memory_order_seq_cst);
        if (q1 == 0)
            return false; /* never written */
        if (!(q1 & 1u)) {
            uint32_t a = atomic_load_explicit(&w->attempt, memory_order_relaxed);
            uint64_t tp = atomic_load_explicit(&w->tick_phase, memory_order_relaxed);
            /* The fields before seq's second read. */
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&w->seq, memory_order_relaxed) == q1) {
                *attempt = a;
                *phase = (unsigned)(tp & 3u);
                *tick = tp >> 2;
                return *phase != DP_SNAP_NONE;
            }
        }
        if (spins > 64)
            sched_yield(); /* the writer was preempted mid-write */
    }
}

static int format_entry(const dp_snapshots_t *s, unsigned attempt, unsigned phase, uint64_t tick, char *buf,
                        size_t size)
{
    /* The tick lost its top two bits in the entry: so does the start's. */
    uint64_t start = (s->a0.tick << 2) >> 2;
    uint64_t ms = dp__ticks_between(start, tick, dp__ns_per_tick(dp__tick_anchor(s->a0.tsc))) / 1000000u;
    int n = snprintf(buf, size, "attempt=%u phase=%s since_ms=%llu", attempt, phase_names[phase],
                     (unsigned long long)ms);
    return n < 0 || (size_t)n >= size ? -1 : n;
}

static int view_get(void *arg, const char *name, char *buf, size_t size)
{
    dp_snapshots_t *s = arg;
    long id = dp_graph_job_id(s->g, name);
    unsigned attempt, phase;
    uint64_t tick;
    if (id < 0 || !read_entry(&s->e[id], &attempt, &phase, &tick))
        return -1;
    return format_entry(s, attempt, phase, tick, buf, size);
}

void dp__snapshot_set_locked(dp_snapshots_t *s, uint32_t id, unsigned attempt, unsigned phase, uint64_t tick)
{
    dp__store_lock(s->store);
    dp_snapshot_t *e = &s->e[id];
    uint32_t q = atomic_load_explicit(&e->seq, memory_order_relaxed);
    atomic_store_explicit(&e->seq, q + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    dp__snapshot_write(e, q, attempt, phase, tick);
    dp__store_unlock(s->store);
}

/* Under the store's lock: every entry, at one moment (frozen: the writers
 * that started before wait out in read_entry, the others for the lock). */
static int view_each(void *arg, int (*fn)(void *a, const char *name, const char *value, size_t len), void *a)
{
    dp_snapshots_t *s = arg;
    atomic_store_explicit(&s->frozen, true, memory_order_seq_cst);
    int rc = 0;
    size_t n = dp_graph_job_count(s->g);
    for (size_t id = 0; id < n; id++) {
        unsigned attempt, phase;
        uint64_t tick;
        char buf[DP_STORE_VIEW_VALUE_MAX];
        if (!read_entry(&s->e[id], &attempt, &phase, &tick))
            continue;
        int len = format_entry(s, attempt, phase, tick, buf, sizeof buf);
        const char *name = dp_graph_job_name(s->g, id);
        if (len < 0 || !name)
            continue;
        if ((rc = fn(a, name, buf, (size_t)len)) != 0)
            break;
    }
    atomic_store_explicit(&s->frozen, false, memory_order_release);
    return rc;
}

dp_snapshots_t *dp__snapshots_new(dp_store_t *store, const dp_graph_t *g, dp_tick_anchor_t a0)
{
    dp_snapshots_t *s = calloc(1, sizeof *s);
    size_t n = dp_graph_job_count(g);
    if (!s || !(s->e = calloc(n ? n : 1, sizeof *s->e))) {
        free(s);
        return NULL;
    }
    s->store = store;
    s->g = g;
    s->a0 = a0;
    s->view.get = view_get;
    s->view.each = view_each;
    s->view.arg = s;
    dp__store_view_attach(store, &s->view);
    return s;
}

void dp__snapshots_free(dp_snapshots_t *s)
{
    if (!s)
        return;
    dp__store_view_detach(s->store, &s->view);
    free(s->e);
    free(s);
}
