/* prio.c - pools and priorities in a run (prio.h). The paths, root order
 * and levels it orders by are the graph's, made by validate (dag.c: one
 * pass over the jobs in reverse topological order, each job's path its
 * weight, 1 or its expected ms, plus the longest of its successors').
 *
 * The bucket queues: one FIFO list per level (head and tail job, linked
 * through a per-job `next`) and a bitmap of the non-empty levels in layers
 * of 64-bit words (a word of layer k+1 says which words of layer k are not
 * zero): pushing and popping are O(1) plus a few word operations, finding
 * the highest level three or four. A binary heap would cost log2(n) steps
 * a job, where the plain run costs ~20 ns a job in all.
 */
#include "prio.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ticks.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* Bucket queues                                                             */
/* ------------------------------------------------------------------------ */

#define BQ_MAX_LAYERS 6

typedef struct bq {
    uint32_t *head, *tail; /* per level: job + 1, 0 empty */
    uint64_t *bits;        /* layer 0 (a bit per level), then each layer above */
    uint32_t off[BQ_MAX_LAYERS];
    unsigned nlay;
    size_t count;
    size_t words; /* of bits, all layers */
    uint32_t nlevels;
} bq_t;

static size_t bq_layout(bq_t *q, uint32_t nlevels)
{
    size_t w = ((size_t)nlevels + 63) / 64, total = 0;
    if (!w)
        w = 1;
    unsigned k = 0;
    for (;;) {
        q->off[k++] = (uint32_t)total;
        total += w;
        if (w == 1)
            break;
        w = (w + 63) / 64;
    }
    q->nlay = k;
    q->words = total;
    q->nlevels = nlevels;
    q->count = 0;
    return total;
}

/* Bytes of scratch a queue of nlevels takes (8-byte aligned). */
static size_t bq_bytes(uint32_t nlevels)
{
    bq_t q;
    size_t words = bq_layout(&q, nlevels);
    size_t lists = 2 * (size_t)(nlevels ? nlevels : 1) * sizeof(uint32_t);
    return words * sizeof(uint64_t) + ((lists + 7) & ~(size_t)7);
}

static char *bq_place(bq_t *q, uint32_t nlevels, char *at)
{
    bq_layout(q, nlevels);
    q->bits = (uint64_t *)(void *)at;
    at += q->words * sizeof(uint64_t);
    q->head = (uint32_t *)(void *)at;
    q->tail = q->head + (nlevels ? nlevels : 1);
    size_t lists = 2 * (size_t)(nlevels ? nlevels : 1) * sizeof(uint32_t);
    return at + ((lists + 7) & ~(size_t)7);
}

static void bq_clear(bq_t *q)
{
    memset(q->bits, 0, q->words * sizeof(uint64_t));
    memset(q->head, 0, 2 * (size_t)(q->nlevels ? q->nlevels : 1) * sizeof(uint32_t));
    q->count = 0;
}

static void bq_push(bq_t *q, uint32_t *next, uint32_t id, uint32_t lv)
{
    next[id] = 0;
    uint32_t t = q->tail[lv];
    q->tail[lv] = id + 1;
    q->count++;
    if (t) {
        next[t - 1] = id + 1;
        return;
    }
    q->head[lv] = id + 1;
    size_t p = lv;
    for (unsigned k = 0; k < q->nlay; k++) {
        uint64_t *w = &q->bits[q->off[k] + (p >> 6)];
        uint64_t was = *w;
        *w = was | (1ull << (p & 63));
        if (was)
            break; /* the layers above say so already */
        p >>= 6;
    }
}

/* The highest non-empty level, or UINT32_MAX. */
static uint32_t bq_top(const bq_t *q)
{
    if (!q->count)
        return UINT32_MAX;
    size_t p = 0;
    for (unsigned k = q->nlay; k-- > 0;) {
        uint64_t w = q->bits[q->off[k] + p];
        p = p * 64 + (63u - (unsigned)__builtin_clzll(w));
    }
    return (uint32_t)p;
}

/* Removes the first job of level lv (not empty). */
static uint32_t bq_pop(bq_t *q, const uint32_t *next, uint32_t lv)
{
    uint32_t id = q->head[lv] - 1;
    q->count--;
    if ((q->head[lv] = next[id]) != 0)
        return id;
    q->tail[lv] = 0;
    size_t p = lv;
    for (unsigned k = 0; k < q->nlay; k++) {
        uint64_t *w = &q->bits[q->off[k] + (p >> 6)];
        *w &= ~(1ull << (p & 63));
        if (*w)
            break;
        p >>= 6;
    }
    return id;
}

/* ------------------------------------------------------------------------ */
/* The run's half                                                            */
/* ------------------------------------------------------------------------ */

typedef struct spool {
    unsigned free; /* slots (an ordered run's, under the lock) */
    /* Slots free in a run of pool lines only (prio.h): taken and given
     * back without the lock. */
    _Atomic uint32_t avail;
    bq_t wait; /* its jobs waiting for slots, by level among its own */
    /* Its roots that did not get slots at the run's start
     * (dp__sched_seed_roots), not in `wait`: a list linked through the
     * run's `next` (job + 1, 0 the end), best first (the roots' order), so
     * that seeding a root costs two stores. The line is both: its head is
     * the better of the two heads, the root's at equal levels (it was
     * ready first, as it would be in `wait`). */
    uint32_t lazy_head, lazy_tail;
    size_t nlazy;
    /* wait.count + nlazy, stored under the lock, read without it by
     * dp__sched_handoff, dp__sched_pool_take and dp__sched_pool_drain. */
    _Atomic uint32_t nwait;
} spool_t;

/* In waits[]: a job that waited for its pool. Its wait is counted until
 * its start (its slot's start tick) when the run ends, dp__sched_finish:
 * no clock is read when the slots come. */
#define WAITED UINT32_MAX

struct dp_sched {
    pthread_mutex_t mu;
    dp_graph_t *g;
    const dp_gsched_t *gs;
    uint32_t *next;      /* per job: the next in its bucket's list, + 1 */
    uint64_t *wait_from; /* per job of a pool that had to wait: since when (ticks, ticks.h; 0: no wait) */
    bool tsc;            /* the run's ticks */
    bool lines;          /* a run of pool lines only (prio.h): `ready` unused */
    uint32_t *waits;     /* per job of a pool: its wait in ms + 1 (handed to the result) */
    uint64_t root_from;  /* when the roots were seeded (ticks; 0: not yet): the lazy roots' wait's start */
    bq_t ready;
    spool_t *pools;
    /* ready.count, stored under the lock, read without it by
     * dp__sched_handoff. */
    _Atomic uint32_t nready;
};

/* The counts read without the lock, after a change under it (relaxed: a
 * hint, dp__sched_handoff says why a stale one is harmless). */
static inline void sync_ready(dp_sched_t *s)
{
    atomic_store_explicit(&s->nready, (uint32_t)s->ready.count, memory_order_relaxed);
}

static inline void sync_wait(spool_t *sp)
{
    atomic_store_explicit(&sp->nwait, (uint32_t)(sp->wait.count + sp->nlazy), memory_order_relaxed);
}

/* The head of pool sp's line (UINT32_MAX: empty): its lazy roots' head if
 * that is at least as good as the bucket queue's best (*lv: UINT32_MAX),
 * else the queue's (*lv: its level). */
static inline uint32_t line_head(const dp_sched_t *s, const spool_t *sp, uint32_t *lv)
{
    uint32_t top = bq_top(&sp->wait);
    if (sp->lazy_head) {
        uint32_t r = sp->lazy_head - 1;
        if (top == UINT32_MAX || s->gs->plevel[r] >= top) {
            *lv = UINT32_MAX;
            return r;
        }
    }
    *lv = top;
    return top == UINT32_MAX ? UINT32_MAX : sp->wait.head[top] - 1;
}

/* Takes line_head's job id (lv as it said) out of the line. A lazy root
 * waited since the roots were seeded. */
static inline void line_pop(dp_sched_t *s, spool_t *sp, uint32_t id, uint32_t lv)
{
    if (lv != UINT32_MAX) {
        bq_pop(&sp->wait, s->next, lv);
        return;
    }
    if (!(sp->lazy_head = s->next[id]))
        sp->lazy_tail = 0;
    sp->nlazy--;
    s->wait_from[id] = s->root_from;
}

bool dp__sched_lines_only(const dp_graph_t *g)
{
    return g->sched->ordered && !g->sched->prioritized;
}

bool dp__sched_is_lines(const dp_sched_t *s)
{
    return s->lines;
}

bool dp__sched_needed(const dp_graph_t *g, unsigned nworkers)
{
    const dp_gsched_t *gs = g->sched;
    if (!gs->ordered || gs->prioritized)
        return gs->ordered;
    for (size_t p = 0; p < g->npools; p++)
        if ((uint64_t)nworkers * gs->pool_max[p] > g->pools[p].slots)
            return true;
    return false;
}

uint32_t *dp__sched_unbound_waits(dp_graph_t *g, const dp_slot_t *slots)
{
    const uint32_t *pp = g->sched->pol_pool;
    uint32_t *w = pp ? dp__graph_waits_take(g) : NULL;
    if (!w)
        return NULL;
    const dp_job_def_t *jobs = g->jobs;
    for (size_t j = 0; j < g->njobs; j++)
        w[j] = pp[jobs[j].pol] && slots[j].start_tick;
    return w;
}

dp_sched_t *dp__sched_new(dp_graph_t *g, bool tsc)
{
    dp_gsched_t *gs = g->sched;
    size_t n = g->njobs, nn = n ? n : 1;
    dp_sched_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->g = g;
    s->gs = gs;
    /* The run's cheap clock (a TSC read where it can). */
    s->tsc = tsc;
    s->lines = dp__sched_lines_only(g);
    /* The waits array of a result freed before, when there is one (its
     * pages faulted in already), else a fresh one. */
    if (g->npools && (!(s->pools = calloc(g->npools, sizeof *s->pools)) || !(s->waits = dp__graph_waits_take(g))))
        goto fail;
    size_t need = nn * sizeof(uint32_t) + nn * sizeof(uint64_t) + bq_bytes(gs->nlevels) + 64;
    for (size_t p = 0; p < g->npools; p++)
        need += bq_bytes(gs->pool_nlevels[p]);
    if (gs->scratch_size < need) {
        /* Zero: the queues start empty (a run leaves them so). */
        void *sc = calloc(1, need);
        if (!sc)
            goto fail;
        free(gs->scratch);
        ((dp_gsched_t *)gs)->scratch = sc;
        ((dp_gsched_t *)gs)->scratch_size = need;
    }
    char *at = gs->scratch;
    s->wait_from = (uint64_t *)(void *)at;
    at += nn * sizeof(uint64_t);
    at = bq_place(&s->ready, gs->nlevels, at);
    for (size_t p = 0; p < g->npools; p++) {
        at = bq_place(&s->pools[p].wait, gs->pool_nlevels[p], at);
        s->pools[p].free = g->pools[p].slots;
        atomic_init(&s->pools[p].avail, g->pools[p].slots);
    }
    s->next = (uint32_t *)(void *)at;
    /* Adaptive: the lock is held for a few queue operations; a worker
     * spins briefly before it sleeps. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    pthread_mutex_init(&s->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    return s;
fail:
    free(s->pools);
    dp__graph_waits_give(g, s->waits);
    free(s);
    return NULL;
}

void dp__sched_free(dp_sched_t *s)
{
    if (!s)
        return;
    /* A run cut short leaves jobs queued: the next run finds them empty. */
    if (s->ready.count)
        bq_clear(&s->ready);
    for (size_t p = 0; p < s->g->npools; p++)
        if (s->pools[p].wait.count)
            bq_clear(&s->pools[p].wait);
    pthread_mutex_destroy(&s->mu);
    free(s->pools);
    dp__graph_waits_give(s->g, s->waits);
    free(s);
}

void dp__sched_finish(dp_sched_t *s, const dp_slot_t *slots)
{
    if (!s->waits)
        return;
    double ns_per_tick = dp__ns_per_tick(dp__tick_anchor(s->tsc));
    for (size_t j = 0; j < s->g->njobs; j++) {
        if (s->waits[j] != WAITED)
            continue;
        uint64_t start = slots[j].start_tick;
        uint64_t ms = dp__ticks_between(s->wait_from[j], start, ns_per_tick) / 1000000u;
        s->waits[j] = !start ? 0 : ms >= WAITED - 1 ? WAITED - 1 : (uint32_t)ms + 1;
    }
}

uint32_t *dp__sched_take_waits(dp_sched_t *s)
{
    uint32_t *w = s->waits;
    s->waits = NULL;
    return w;
}

static inline uint32_t pool_of(const dp_sched_t *s, uint32_t id)
{
    const dp_gsched_t *gs = s->gs;
    return gs->pol_pool ? gs->pol_pool[s->g->jobs[id].pol] : 0;
}

static inline unsigned slots_of(const dp_sched_t *s, uint32_t id)
{
    return s->g->pols[s->g->jobs[id].pol].pool_slots;
}

/* What one step made ready: pushed into the ready queue in the order made,
 * except a lone one while the caller may take one (want): the chain's case,
 * where that job goes straight to the caller, with no queue operation,
 * unless a better job waits in the queue. */
typedef struct made {
    bool want;
    uint32_t cand; /* the first job made ready, not pushed yet; UINT32_MAX: none */
    size_t n;
} made_t;

static inline void make_ready(dp_sched_t *s, made_t *m, uint32_t id)
{
    const uint32_t *level = s->gs->level;
    if (m->want && m->n == 0) {
        m->n = 1;
        m->cand = id;
        return;
    }
    if (m->cand != UINT32_MAX) {
        bq_push(&s->ready, s->next, m->cand, level[m->cand]);
        m->cand = UINT32_MAX;
    }
    m->n++;
    bq_push(&s->ready, s->next, id, level[id]);
}

/* Job id got its pool's slots, after waiting since wait_from[id] (0: at
 * once). */
static inline void granted(dp_sched_t *s, uint32_t id)
{
    s->waits[id] = s->wait_from[id] ? WAITED : 1; /* 1: no wait */
}

/* Pool p's waiting jobs that fit now become ready, best first; the one at
 * the head of the line that does not fit stops the rest (it is not passed,
 * so it cannot starve). */
static void drain(dp_sched_t *s, uint32_t p, made_t *m)
{
    spool_t *sp = &s->pools[p];
    for (uint32_t lv, id; (id = line_head(s, sp, &lv)) != UINT32_MAX;) {
        unsigned need = s->g->pols[s->g->jobs[id].pol].pool_slots;
        if (need > sp->free)
            break;
        line_pop(s, sp, id, lv);
        sp->free -= need;
        granted(s, id);
        make_ready(s, m, id);
    }
    sync_wait(sp);
}

size_t dp__sched_step(dp_sched_t *s, uint32_t done, const uint32_t *ids, size_t n, uint32_t *next)
{
    return dp__sched_step_carry(s, done, ids, n, next, NULL, 0, NULL);
}

/* After a step took job x for its worker: up to max jobs of x's pool's
 * line that need what x holds, best first, for the worker to run on x's
 * slots after it (prio.h). The head of the line that needs another number
 * of slots stops it (it is not passed), and so does one of a lower level
 * than the best ready job (which waits for an idle worker's token: the
 * carry does not pass it; one of its level it may, as when a worker that
 * has not started yet holds the token of a job made ready at the start). */
static size_t take_carry(dp_sched_t *s, uint32_t x, uint32_t *carry, size_t max)
{
    uint32_t top = bq_top(&s->ready);
    uint32_t p = pool_of(s, x);
    if (!p)
        return 0;
    spool_t *sp = &s->pools[p - 1];
    unsigned need = slots_of(s, x);
    size_t k = 0;
    for (uint32_t lv, id; k < max && (id = line_head(s, sp, &lv)) != UINT32_MAX;) {
        if (slots_of(s, id) != need || (top != UINT32_MAX && s->gs->level[id] < top))
            break;
        line_pop(s, sp, id, lv);
        granted(s, id);
        carry[k++] = id;
    }
    if (k)
        sync_wait(sp);
    return k;
}

size_t dp__sched_step_carry(dp_sched_t *s, uint32_t done, const uint32_t *ids, size_t n, uint32_t *next,
                            uint32_t *carry, size_t max, size_t *ncarry)
{
    if (ncarry)
        *ncarry = 0;
    const dp_gsched_t *gs = s->gs;
    const dp_graph_t *g = s->g;
    uint64_t now = 0;
    made_t m = {.want = next != NULL, .cand = UINT32_MAX, .n = 0};
    /* A batch of successors best first (stable), so that their pools'
     * slots go to them in that order. Batches are short (pool.c). */
    uint32_t sorted[64];
    if (n > 1 && n <= 64 && s->pools) {
        for (size_t i = 0; i < n; i++) {
            uint32_t v = ids[i], lv = gs->level[v];
            size_t k = i;
            for (; k > 0 && gs->level[sorted[k - 1]] < lv; k--)
                sorted[k] = sorted[k - 1];
            sorted[k] = v;
        }
        ids = sorted;
    }
    pthread_mutex_lock(&s->mu);
    if (done != UINT32_MAX) {
        uint32_t p = pool_of(s, done);
        if (p) {
            s->pools[p - 1].free += g->pols[g->jobs[done].pol].pool_slots;
            drain(s, p - 1, &m);
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i], p = pool_of(s, id);
        if (!p) {
            make_ready(s, &m, id);
            continue;
        }
        spool_t *sp = &s->pools[p - 1];
        unsigned need = g->pols[g->jobs[id].pol].pool_slots;
        if (!sp->wait.count && !sp->nlazy && need <= sp->free) {
            /* The common case: nobody waits and the slots are free. */
            sp->free -= need;
            s->waits[id] = 1;
            make_ready(s, &m, id);
            continue;
        }
        s->wait_from[id] = 0;
        bq_push(&sp->wait, s->next, id, gs->plevel[id]);
        if (sp->free)
            drain(s, p - 1, &m); /* else nothing fits */
        else
            sync_wait(sp);
        if (!s->waits[id]) {
            /* Still waiting: from now. */
            if (!now)
                now = dp__ticks(s->tsc);
            s->wait_from[id] = now ? now : 1;
        }
    }
    size_t made = m.n;
    if (next) {
        *next = UINT32_MAX;
        uint32_t top = bq_top(&s->ready);
        if (m.cand != UINT32_MAX && (top == UINT32_MAX || top < gs->level[m.cand])) {
            *next = m.cand; /* the only one made ready, and the best */
            made--;
        } else if (made) {
            /* The best ready job, first come first served within its level. */
            if (m.cand != UINT32_MAX)
                bq_push(&s->ready, s->next, m.cand, gs->level[m.cand]);
            *next = bq_pop(&s->ready, s->next, bq_top(&s->ready));
            made--;
        }
        if (carry && *next != UINT32_MAX)
            *ncarry = take_carry(s, *next, carry, max);
    }
    sync_ready(s);
    pthread_mutex_unlock(&s->mu);
    return made;
}

size_t dp__sched_seed_roots(dp_sched_t *s, const uint32_t *ids, size_t n)
{
    const dp_graph_t *g = s->g;
    made_t m = {.want = false, .cand = UINT32_MAX, .n = 0};
    pthread_mutex_lock(&s->mu);
    if (!s->root_from) {
        uint64_t now = dp__ticks(s->tsc);
        s->root_from = now ? now : 1;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i], p = pool_of(s, id);
        if (!p) {
            make_ready(s, &m, id);
            continue;
        }
        spool_t *sp = &s->pools[p - 1];
        unsigned need = g->pols[g->jobs[id].pol].pool_slots;
        if (!sp->nlazy && need <= sp->free) {
            /* As dp__sched_step: nobody waits (no job but a root is in
             * the line yet) and the slots are free. */
            sp->free -= need;
            s->waits[id] = 1;
            make_ready(s, &m, id);
            continue;
        }
        /* At the end of its pool's lazy roots: the roots come best first,
         * so the list stays in the line's order. */
        assert(!sp->lazy_tail || s->gs->plevel[sp->lazy_tail - 1] >= s->gs->plevel[id]);
        s->next[id] = 0;
        if (sp->lazy_tail)
            s->next[sp->lazy_tail - 1] = id + 1;
        else
            sp->lazy_head = id + 1;
        sp->lazy_tail = id + 1;
        sp->nlazy++;
    }
    for (size_t p = 0; p < g->npools; p++)
        sync_wait(&s->pools[p]);
    sync_ready(s);
    pthread_mutex_unlock(&s->mu);
    return m.n;
}

bool dp__sched_handoff(dp_sched_t *s, uint32_t done, uint32_t succ)
{
    uint32_t p = pool_of(s, done);
    if (p != pool_of(s, succ) || atomic_load_explicit(&s->nready, memory_order_relaxed))
        return false;
    if (p) {
        if (slots_of(s, done) != slots_of(s, succ) ||
            atomic_load_explicit(&s->pools[p - 1].nwait, memory_order_relaxed))
            return false;
        s->waits[succ] = 1; /* no wait */
    }
    return true;
}

size_t dp__sched_carry_return(dp_sched_t *s, const uint32_t *carry, size_t n)
{
    const dp_gsched_t *gs = s->gs;
    made_t m = {.want = false, .cand = UINT32_MAX, .n = 0};
    uint64_t now = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        uint32_t id = carry[i], p = pool_of(s, id);
        spool_t *sp = &s->pools[p - 1];
        /* Waiting again, without slots: since it first waited, or from
         * now if it never had to. */
        s->waits[id] = 0;
        if (!s->wait_from[id]) {
            if (!now)
                now = dp__ticks(s->tsc);
            s->wait_from[id] = now ? now : 1;
        }
        bq_push(&sp->wait, s->next, id, gs->plevel[id]);
        if (sp->free)
            drain(s, p - 1, &m);
        else
            sync_wait(sp);
    }
    sync_ready(s);
    pthread_mutex_unlock(&s->mu);
    return m.n;
}

void dp__sched_take(dp_sched_t *s, uint32_t *ids, size_t n)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++)
        ids[i] = bq_pop(&s->ready, s->next, bq_top(&s->ready));
    sync_ready(s);
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------------ */
/* A run of pool lines only                                                  */
/* ------------------------------------------------------------------------ */

uint32_t dp__sched_pool_of(const dp_sched_t *s, uint32_t id)
{
    return pool_of(s, id);
}

/* Takes need slots from sp if that many are free; the first read with
 * `order` (dp__sched_pool_drain's must be seq_cst). */
static inline bool avail_take(spool_t *sp, unsigned need, memory_order order)
{
    uint32_t cur = atomic_load_explicit(&sp->avail, order);
    while (cur >= need)
        if (atomic_compare_exchange_weak_explicit(&sp->avail, &cur, cur - need, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    return false;
}

bool dp__sched_pool_take(dp_sched_t *s, uint32_t id)
{
    if (s->waits[id])
        return true; /* passed on or drained to it (granted) */
    spool_t *sp = &s->pools[pool_of(s, id) - 1];
    unsigned need = slots_of(s, id);
    /* Relaxed: a job that joins the line meanwhile is passed once, and
     * nothing is lost (prio.h). */
    if (!atomic_load_explicit(&sp->nwait, memory_order_relaxed) && avail_take(sp, need, memory_order_relaxed)) {
        s->waits[id] = 1; /* no wait */
        return true;
    }
    uint64_t now = dp__ticks(s->tsc);
    pthread_mutex_lock(&s->mu);
    s->waits[id] = 0;
    s->wait_from[id] = now ? now : 1;
    bq_push(&sp->wait, s->next, id, s->gs->plevel[id]);
    /* Seq_cst, before dp__sched_pool_drain reads `avail`: pairs with
     * dp__sched_pool_give (prio.h). */
    atomic_store_explicit(&sp->nwait, (uint32_t)(sp->wait.count + sp->nlazy), memory_order_seq_cst);
    pthread_mutex_unlock(&s->mu);
    return false;
}

bool dp__sched_pool_pass(dp_sched_t *s, uint32_t done, uint32_t succ)
{
    uint32_t p = pool_of(s, done);
    /* A succ with slots of its own already (drained to it, then taken
     * from the queue by a worker that held another job's) takes none: the
     * held ones would be lost to the pool, and the jobs of its line would
     * wait past the run's end. */
    if (!p || s->waits[succ] || p != pool_of(s, succ) || slots_of(s, done) != slots_of(s, succ) ||
        atomic_load_explicit(&s->pools[p - 1].nwait, memory_order_relaxed))
        return false;
    s->waits[succ] = 1; /* no wait */
    return true;
}

bool dp__sched_pool_unwaited(dp_sched_t *s, uint32_t done)
{
    uint32_t p = pool_of(s, done);
    return p && !atomic_load_explicit(&s->pools[p - 1].nwait, memory_order_relaxed);
}

uint32_t dp__sched_pool_give(dp_sched_t *s, uint32_t done)
{
    uint32_t p = pool_of(s, done);
    if (p)
        atomic_fetch_add_explicit(&s->pools[p - 1].avail, slots_of(s, done), memory_order_seq_cst);
    return p;
}

bool dp__sched_settled(dp_sched_t *s)
{
    if (!s->lines && s->ready.count)
        return false;
    for (size_t p = 0; p < s->g->npools; p++) {
        const spool_t *sp = &s->pools[p];
        unsigned slots = s->lines ? atomic_load(&sp->avail) : sp->free;
        if (sp->wait.count || sp->nlazy || atomic_load(&sp->nwait) || slots != s->g->pools[p].slots)
            return false;
    }
    return true;
}

size_t dp__sched_pool_drain(dp_sched_t *s, uint32_t p1, uint32_t *ids, size_t max)
{
    spool_t *sp = &s->pools[p1 - 1];
    /* Seq_cst, after the slots were given back: pairs with
     * dp__sched_pool_take's store. */
    if (!atomic_load_explicit(&sp->nwait, memory_order_seq_cst))
        return 0;
    size_t k = 0;
    pthread_mutex_lock(&s->mu);
    for (uint32_t lv, id; k < max && (id = line_head(s, sp, &lv)) != UINT32_MAX;) {
        if (!avail_take(sp, slots_of(s, id), memory_order_seq_cst))
            break;
        line_pop(s, sp, id, lv);
        granted(s, id);
        ids[k++] = id;
    }
    if (k)
        sync_wait(sp);
    pthread_mutex_unlock(&s->mu);
    return k;
}
