/* prio.c - pools and priorities (prio.h).
 *
 * The paths: one pass over the jobs in reverse topological order, each
 * job's path its weight (1, or its expected ms) plus the longest of its
 * successors'. Cheap next to validate's other steps (one read per edge),
 * and skipped for a graph without edges, whose paths are all one job.
 *
 * The bucket queues: one FIFO list per level (head and tail job, linked
 * through a per-job `next`) and a bitmap of the non-empty levels in layers
 * of 64-bit words (a word of layer k+1 says which words of layer k are not
 * zero): pushing and popping are O(1) plus a few word operations, finding
 * the highest level three or four. A binary heap would cost log2(n) steps
 * a job, where the plain run costs ~20 ns a job in all.
 */
#include "prio.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* The graph's half                                                          */
/* ------------------------------------------------------------------------ */

void dp__gsched_free(dp_graph_t *g)
{
    dp_gsched_t *gs = g->sched;
    if (!gs)
        return;
    free(gs->rank);
    free(gs->root_order);
    free(gs->pol_pool);
    free(gs->level);
    free(gs->plevel);
    free(gs->pool_nlevels);
    free(gs->expected);
    free(gs->scratch);
    free(gs);
    g->sched = NULL;
}

static int find_pool(const dp_graph_t *g, const char *name)
{
    for (size_t i = 0; i < g->npools; i++)
        if (strcmp(g->pools[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Each policy's pool (checked against the job's slots), and whether the
 * graph is ordered. Problems name the first job (by id) of the policy. */
static int resolve_pools(dp_graph_t *g, dp_gsched_t *gs, char *msg, size_t msglen)
{
    bool any_pool = false;
    for (size_t p = 0; p < g->npols; p++) {
        any_pool = any_pool || g->pols[p].pool;
        gs->ordered = gs->ordered || g->pols[p].priority != 0;
    }
    if (!any_pool)
        return DP_OK;
    gs->ordered = true;
    if (!(gs->pol_pool = calloc(g->npols, sizeof *gs->pol_pool)))
        return DP_ENOMEM;
    /* A policy may be left unused (a job refused after it was made): only
     * those of jobs are checked. */
    for (size_t j = 0; j < g->njobs; j++) {
        uint32_t p = g->jobs[j].pol;
        const dp_job_policy_t *pol = &g->pols[p];
        if (!pol->pool || gs->pol_pool[p])
            continue;
        int k = find_pool(g, pol->pool);
        if (k < 0) {
            snprintf(msg, msglen,
                     "job \"%s\" asks for pool \"%s\", which the graph does not have; add the pool "
                     "(dp_graph_add_pool, or pools = { %s = 2; } in a workflow) or fix the job's pool",
                     dp__job_name(g, (uint32_t)j), pol->pool, pol->pool);
            return DP_ENOTFOUND;
        }
        if (pol->pool_slots > g->pools[k].slots) {
            snprintf(msg, msglen,
                     "job \"%s\" asks for %u slots of pool \"%s\", which has %u; it could never start: "
                     "lower its pool_slots to at most %u or give the pool more slots",
                     dp__job_name(g, (uint32_t)j), pol->pool_slots, pol->pool, g->pools[k].slots, g->pools[k].slots);
            return DP_EINVAL;
        }
        gs->pol_pool[p] = (uint32_t)k + 1;
    }
    return DP_OK;
}

static inline uint32_t sat_add32(uint32_t a, uint64_t b)
{
    uint64_t s = (uint64_t)a + b;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* The paths, in reverse topological order (topo, or ids). */
static int make_ranks(dp_graph_t *g, dp_gsched_t *gs, const uint32_t *topo)
{
    size_t n = g->njobs;
    gs->weighted = gs->expected != NULL;
    if (!gs->weighted && (!g->succ_off || g->succ_off[n] == 0)) {
        /* No successors: no flag to set (a graph changed since is
         * validated again, with fresh flags from add_job). */
        free(gs->rank);
        gs->rank = NULL; /* every path is one job */
        return DP_OK;
    }
    if (!gs->rank && !(gs->rank = malloc((n ? n : 1) * sizeof *gs->rank)))
        return DP_ENOMEM;
    uint64_t mean = 0;
    if (gs->weighted) {
        uint64_t sum = 0, k = 0;
        for (size_t j = 0; j < n; j++)
            if (gs->expected[j]) {
                sum += gs->expected[j] - 1;
                k++;
            }
        mean = k ? sum / k : 0;
    }
    const uint32_t *so = g->succ_off, *si = g->succ_ids;
    uint32_t *rank = gs->rank;
    for (size_t i = n; i-- > 0;) {
        uint32_t j = topo ? topo[i] : (uint32_t)i, m = 0, lo = UINT32_MAX;
        for (uint32_t k = so[j]; k < so[j + 1]; k++) {
            uint32_t r = rank[si[k]];
            if (r > m)
                m = r;
            if (r < lo)
                lo = r;
        }
        if (so[j + 1] - so[j] > 1 && lo != m)
            g->jobs[j].flags |= DP_DEF_SUCC_RANKS;
        else
            g->jobs[j].flags &= ~DP_DEF_SUCC_RANKS;
        uint64_t w = 1;
        if (gs->weighted)
            w = gs->expected[j] ? gs->expected[j] - 1 : mean;
        rank[j] = sat_add32(m, w);
    }
    return DP_OK;
}

static const uint32_t *sort_rank; /* qsort has no argument: set around the call (validate is one thread per graph) */

static int cmp_root(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    uint32_t rx = sort_rank[x], ry = sort_rank[y];
    if (rx != ry)
        return rx > ry ? -1 : 1;
    return x < y ? -1 : x > y;
}

static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

/* The roots longest path first, when their paths differ. */
static int make_root_order(dp_graph_t *g, dp_gsched_t *gs)
{
    free(gs->root_order);
    gs->root_order = NULL;
    gs->nroot_order = 0;
    if (!gs->rank || g->nroots < 2)
        return DP_OK;
    size_t n = g->njobs, k = 0;
    uint32_t first = UINT32_MAX;
    bool differ = false;
    for (size_t j = 0; j < n; j++)
        if (g->dep_off[j + 1] == g->dep_off[j]) {
            if (first == UINT32_MAX)
                first = gs->rank[j];
            else if (gs->rank[j] != first)
                differ = true;
        }
    if (!differ)
        return DP_OK;
    if (!(gs->root_order = malloc(g->nroots * sizeof *gs->root_order)))
        return DP_ENOMEM;
    for (size_t j = 0; j < n; j++)
        if (g->dep_off[j + 1] == g->dep_off[j])
            gs->root_order[k++] = (uint32_t)j;
    pthread_mutex_lock(&sort_mu);
    sort_rank = gs->rank;
    qsort(gs->root_order, k, sizeof *gs->root_order, cmp_root);
    pthread_mutex_unlock(&sort_mu);
    gs->nroot_order = k;
    return DP_OK;
}

typedef struct keyed {
    uint64_t key;
    uint32_t id;
} keyed_t;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Ordered graphs: each job's level (dense, by priority then path) and its
 * level among its pool's jobs. */
static int make_levels(dp_graph_t *g, dp_gsched_t *gs)
{
    size_t n = g->njobs, nn = n ? n : 1;
    keyed_t *kv = malloc(nn * sizeof *kv);
    if (!kv)
        return DP_ENOMEM;
    if ((!gs->level && !(gs->level = malloc(nn * sizeof *gs->level))) ||
        (gs->pol_pool && !gs->plevel && !(gs->plevel = malloc(nn * sizeof *gs->plevel)))) {
        free(kv);
        return DP_ENOMEM;
    }
    free(gs->pool_nlevels);
    if (!(gs->pool_nlevels = calloc(g->npools ? g->npools : 1, sizeof *gs->pool_nlevels))) {
        free(kv);
        return DP_ENOMEM;
    }
    for (size_t j = 0; j < n; j++) {
        int prio = g->pols[g->jobs[j].pol].priority;
        uint32_t r = gs->rank ? gs->rank[j] : 1;
        kv[j].key = (uint64_t)((uint32_t)prio ^ 0x80000000u) << 32 | r;
        kv[j].id = (uint32_t)j;
    }
    qsort(kv, n, sizeof *kv, cmp_keyed);
    uint32_t lv = 0;
    uint32_t *last = calloc(g->npools ? g->npools : 1, sizeof *last); /* per pool: its last level + 1 */
    if (!last) {
        free(kv);
        return DP_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (i && kv[i].key != kv[i - 1].key)
            lv++;
        uint32_t j = kv[i].id;
        gs->level[j] = lv;
        uint32_t p = gs->pol_pool ? gs->pol_pool[g->jobs[j].pol] : 0;
        if (p) {
            if (last[p - 1] != lv + 1) {
                last[p - 1] = lv + 1;
                gs->pool_nlevels[p - 1]++;
            }
            gs->plevel[j] = gs->pool_nlevels[p - 1] - 1;
        }
    }
    gs->nlevels = n ? lv + 1 : 0;
    /* The roots best first (equal levels in id order): admitted in that
     * order, they get their pools' slots in it. */
    free(gs->root_order);
    gs->root_order = NULL;
    gs->nroot_order = 0;
    if (g->nroots > 1 && (gs->root_order = malloc(g->nroots * sizeof *gs->root_order))) {
        for (size_t end = n; end > 0;) {
            size_t b = end - 1;
            while (b > 0 && kv[b - 1].key == kv[end - 1].key)
                b--;
            for (size_t i = b; i < end; i++)
                if (g->dep_off[kv[i].id + 1] == g->dep_off[kv[i].id])
                    gs->root_order[gs->nroot_order++] = kv[i].id;
            end = b;
        }
    }
    free(last);
    free(kv);
    if (g->nroots > 1 && !gs->root_order)
        return DP_ENOMEM;
    free(gs->scratch); /* sized for other levels */
    gs->scratch = NULL;
    gs->scratch_size = 0;
    return DP_OK;
}

static int make_orders(dp_graph_t *g, dp_gsched_t *gs, const uint32_t *topo)
{
    int rc = make_ranks(g, gs, topo);
    if (rc == DP_OK)
        rc = make_root_order(g, gs);
    if (rc == DP_OK && gs->ordered)
        rc = make_levels(g, gs);
    return rc;
}

int dp__gsched_build(dp_graph_t *g, const uint32_t *topo, char *msg, size_t msglen)
{
    dp__gsched_free(g);
    dp_gsched_t *gs = calloc(1, sizeof *gs);
    if (!gs)
        return DP_ENOMEM;
    g->sched = gs;
    int rc = resolve_pools(g, gs, msg, msglen);
    if (rc == DP_OK)
        rc = make_orders(g, gs, topo);
    if (rc != DP_OK)
        dp__gsched_free(g);
    if (rc == DP_ENOMEM)
        snprintf(msg, msglen, "out of memory");
    return rc;
}

int dp__gsched_refresh(dp_graph_t *g)
{
    dp_gsched_t *gs = g->sched;
    if (!gs || !gs->stale)
        return DP_OK;
    /* A topological order (Kahn's), for the paths. */
    size_t n = g->njobs, nn = n ? n : 1, head = 0, tail = 0;
    uint32_t *order = malloc(nn * sizeof *order), *indeg = malloc(nn * sizeof *indeg);
    int rc = DP_ENOMEM;
    if (order && indeg) {
        for (size_t j = 0; j < n; j++)
            if (!(indeg[j] = g->dep_off[j + 1] - g->dep_off[j]))
                order[tail++] = (uint32_t)j;
        while (head < tail) {
            uint32_t j = order[head++];
            for (uint32_t k = g->succ_off[j]; k < g->succ_off[j + 1]; k++)
                if (--indeg[g->succ_ids[k]] == 0)
                    order[tail++] = g->succ_ids[k];
        }
        rc = make_orders(g, gs, order);
    }
    free(order);
    free(indeg);
    if (rc == DP_OK)
        gs->stale = false;
    return rc;
}

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
    unsigned free; /* slots */
    bq_t wait;     /* its jobs waiting for slots, by level among its own */
} spool_t;

struct dp_sched {
    pthread_mutex_t mu;
    dp_graph_t *g;
    const dp_gsched_t *gs;
    uint32_t *next;      /* per job: the next in its bucket's list, + 1 */
    uint64_t *wait_from; /* per job of a pool that had to wait: when (CLOCK_MONOTONIC) */
    uint32_t *waits;     /* per job of a pool: its wait in ms + 1 (handed to the result) */
    bq_t ready;
    spool_t *pools;
};

dp_sched_t *dp__sched_new(dp_graph_t *g)
{
    dp_gsched_t *gs = g->sched;
    size_t n = g->njobs, nn = n ? n : 1;
    dp_sched_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->g = g;
    s->gs = gs;
    if (g->npools && (!(s->pools = calloc(g->npools, sizeof *s->pools)) || !(s->waits = calloc(nn, sizeof *s->waits))))
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
    }
    s->next = (uint32_t *)(void *)at;
    pthread_mutex_init(&s->mu, NULL);
    return s;
fail:
    free(s->pools);
    free(s->waits);
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
    free(s->waits);
    free(s);
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

/* Pool p's waiting jobs that fit now become ready, best first; the one at
 * the head of the line that does not fit stops the rest (it is not passed,
 * so it cannot starve). *now: the clock, read once when needed. */
static size_t drain(dp_sched_t *s, uint32_t p, uint64_t *now)
{
    spool_t *sp = &s->pools[p];
    size_t made = 0;
    for (uint32_t lv; (lv = bq_top(&sp->wait)) != UINT32_MAX;) {
        uint32_t id = sp->wait.head[lv] - 1;
        unsigned need = s->g->pols[s->g->jobs[id].pol].pool_slots;
        if (need > sp->free)
            break;
        bq_pop(&sp->wait, s->next, lv);
        sp->free -= need;
        uint64_t from = s->wait_from[id];
        if (from) {
            if (!*now)
                *now = dp__now_ns();
            uint64_t ms = (*now - from) / 1000000u;
            s->waits[id] = ms >= UINT32_MAX - 1 ? UINT32_MAX : (uint32_t)ms + 1;
        } else {
            s->waits[id] = 1; /* no wait */
        }
        bq_push(&s->ready, s->next, id, s->gs->level[id]);
        made++;
    }
    return made;
}

size_t dp__sched_step(dp_sched_t *s, uint32_t done, const uint32_t *ids, size_t n, uint32_t *next)
{
    const dp_gsched_t *gs = s->gs;
    uint64_t now = 0;
    size_t made = 0;
    /* A batch of successors best first (stable), so that their pools'
     * slots go to them in that order. Batches are short (pool.c). */
    uint32_t sorted[64];
    if (n > 1 && n <= 64 && s->pools) {
        for (size_t i = 0; i < n; i++) {
            uint32_t v = ids[i], lv = gs->level[v];
            size_t m = i;
            for (; m > 0 && gs->level[sorted[m - 1]] < lv; m--)
                sorted[m] = sorted[m - 1];
            sorted[m] = v;
        }
        ids = sorted;
    }
    pthread_mutex_lock(&s->mu);
    if (done != UINT32_MAX) {
        uint32_t p = pool_of(s, done);
        if (p) {
            s->pools[p - 1].free += s->g->pols[s->g->jobs[done].pol].pool_slots;
            made += drain(s, p - 1, &now);
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i], p = pool_of(s, id);
        if (!p) {
            bq_push(&s->ready, s->next, id, gs->level[id]);
            made++;
            continue;
        }
        s->wait_from[id] = 0;
        bq_push(&s->pools[p - 1].wait, s->next, id, gs->plevel[id]);
        made += drain(s, p - 1, &now);
        if (!s->waits[id]) {
            /* Still waiting: from now. */
            if (!now)
                now = dp__now_ns();
            s->wait_from[id] = now;
        }
    }
    if (next) {
        *next = UINT32_MAX;
        if (made) {
            *next = bq_pop(&s->ready, s->next, bq_top(&s->ready));
            made--;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return made;
}

void dp__sched_take(dp_sched_t *s, uint32_t *ids, size_t n)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++)
        ids[i] = bq_pop(&s->ready, s->next, bq_top(&s->ready));
    pthread_mutex_unlock(&s->mu);
}
