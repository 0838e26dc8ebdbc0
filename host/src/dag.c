/* dag.c - building and validating the job graph.
 *
 * Validation happens once per shape: the first dp_graph_validate() (or run)
 * sorts, resolves and checks; adding a job or a dependency afterwards makes
 * the next call do it again.
 *
 * Memory is most of what a large graph costs (bench/README.md): a job is a
 * 32-byte definition (name, run, user, and an index into the graph's
 * distinct policies: check, timeout, retries, backoff, readiness, plugin),
 * its name in the graph's arena, and its edges in CSR arrays. What is only
 * needed while the graph is built (the name index, the edge list) is
 * dropped by a successful validate and made again if the graph changes.
 */
#include "dag.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bigmem.h"
#include "hash.h"
#include "readiness.h"
#include "util.h"

static const char *unnamed(char *buf, uint32_t id);

/* Names of unnamed jobs, written out on demand (dp_graph.unnamed_names). */
#define UNNAMED_WIDTH 12 /* "#4294967294" and its NUL */

struct dp_unnamed_names {
    struct dp_unnamed_names *prev; /* made for fewer jobs, kept for what points into it */
    size_t n;
    char names[];
};

dp_graph_t *dp_graph_new(void)
{
    dp_graph_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    atomic_init(&g->running, false);
    return g;
}

static void free_built(dp_graph_t *g)
{
    free(g->dep_off);
    free(g->dep_ids);
    free(g->succ_off);
    free(g->succ_ids);
    free(g->validate_msg);
    free(g->cycle);
    g->dep_off = g->dep_ids = g->succ_off = g->succ_ids = NULL;
    g->validate_msg = NULL;
    g->cycle = NULL;
    g->ncycle = 0;
    g->nroots = 0;
    g->validated = 0;
    dp__gsched_free(g);
}

void dp_graph_free(dp_graph_t *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->njobs; i++) {
        dp_job_def_t *d = &g->jobs[i];
        dp_free_cb user_free = g->pols[d->pol].user_free;
        if (user_free)
            user_free(d->user);
    }
    free(g->pols);
    free(g->exts);
    free(g->pol_index);
    for (size_t i = 0; i < g->nfwd; i++)
        free(g->fwd[i]);
    free(g->fwd);
    dp__strarena_free(&g->names);
    for (size_t i = 0; i < g->nplugins; i++)
        free(g->plugins[i]);
    free(g->plugins);
    for (size_t i = 0; i < g->npools; i++)
        free(g->pools[i].name);
    free(g->pools);
    for (size_t i = 0; i < g->npool_names; i++)
        free(g->pool_names[i]);
    free(g->pool_names);
    free(g->jobs);
    free(g->edges);
    free(g->index);
    free(atomic_load(&g->lazy_index));
    for (struct dp_unnamed_names *b = atomic_load(&g->unnamed_names), *p; b; b = p) {
        p = b->prev;
        free(b);
    }
    free(g->run_scratch);
    dp__bigmem_free(atomic_load(&g->spare_slots)); /* a slot buffer (record.h) */
    free(atomic_load(&g->spare_waits));
    free_built(g);
    free(g);
}

/* Slots of a name index for `want` names: a power of two, over twice as
 * many (probes stay short). */
static size_t index_cap_for(size_t want)
{
    size_t cap = 16;
    while (cap < want * 2 + 2)
        cap *= 2;
    return cap;
}

/* An index entry: the job + 1 in the low 24 bits and 8 bits of its name's
 * hash above (a probe past another name then compares no string 255 times
 * in 256), while every job id fits 24 bits; past that, the job + 1 alone
 * (tagged false). 4 bytes a slot: the index is the largest thing a graph
 * holds while it is built. */
#define TAG_SHIFT 24
#define TAG_JOBS ((1u << TAG_SHIFT) - 1) /* ids below this leave room for a tag */

static inline uint32_t index_tag(uint64_t h, bool tagged)
{
    return tagged ? (uint32_t)(h >> 56) << TAG_SHIFT : 0;
}

static inline uint32_t index_entry(uint32_t job, uint64_t h, bool tagged)
{
    return index_tag(h, tagged) | (job + 1);
}

/* Where `name` (hash h) is in an index of cap slots: its job index, or -1
 * with *empty the free slot where it would go. */
static long index_probe(const uint32_t *idx, size_t cap, bool tagged, const dp_job_def_t *jobs, const char *name,
                        uint64_t h, size_t *empty)
{
    size_t mask = cap - 1;
    uint32_t tag = index_tag(h, tagged), tmask = tagged ? ~TAG_JOBS : 0;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t v = idx[i];
        if (!v) {
            if (empty)
                *empty = i;
            return -1;
        }
        uint32_t j = (v & ~tmask) - 1;
        if ((v & tmask) == tag && strcmp(jobs[j].name, name) == 0)
            return (long)j;
    }
}

/* Whether an index made now for g may carry tags. */
static bool index_taggable(const dp_graph_t *g)
{
    return g->njobs < TAG_JOBS - 1;
}

/* A name index of cap slots over the graph's named jobs; NULL without
 * memory. */
static uint32_t *index_make(const dp_graph_t *g, size_t cap, bool tagged)
{
    uint32_t *idx = calloc(cap, sizeof *idx);
    if (!idx)
        return NULL;
    size_t mask = cap - 1;
    for (size_t j = 0; j < g->njobs; j++) {
        if (g->jobs[j].flags & DP_DEF_UNNAMED)
            continue;
        uint64_t h = dp__hash_fnv1a(g->jobs[j].name);
        size_t i = h & mask;
        while (idx[i])
            i = (i + 1) & mask;
        idx[i] = index_entry((uint32_t)j, h, tagged);
    }
    return idx;
}

/* The id N of a name "#N" as an unnamed job gets it (decimal, no leading
 * zero, below 2^32 - 1), or -1. */
static long unnamed_id(const char *name)
{
    if (name[0] != '#' || name[1] < '0' || name[1] > '9' || (name[1] == '0' && name[2]))
        return -1;
    uint64_t v = 0;
    for (const char *p = name + 1; *p; p++) {
        if (*p < '0' || *p > '9' || p - name > 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v < UINT32_MAX - 1 ? (long)v : -1;
}

const char *dp__job_name_slow(const dp_graph_t *g, uint32_t id)
{
    dp_graph_t *gw = (dp_graph_t *)(uintptr_t)g;
    /* Acquire: the names, written before the block's publication. */
    struct dp_unnamed_names *b = atomic_load_explicit(&gw->unnamed_names, memory_order_acquire);
    while (!b || id >= b->n) {
        size_t n = g->njobs;
        struct dp_unnamed_names *nb = malloc(sizeof *nb + n * UNNAMED_WIDTH);
        if (!nb)
            return NULL;
        nb->n = n;
        nb->prev = b;
        for (size_t j = 0; j < n; j++)
            if (!g->jobs[j].name)
                unnamed(nb->names + j * UNNAMED_WIDTH, (uint32_t)j);
        /* Release: publishes the names; acquire on failure: the winner's. */
        if (atomic_compare_exchange_strong_explicit(&gw->unnamed_names, &b, nb, memory_order_acq_rel,
                                                    memory_order_acquire))
            b = nb;
        else
            free(nb);
    }
    return b->names + (size_t)id * UNNAMED_WIDTH;
}

/* The unnamed job whose name is `name`, or -1. */
static long find_unnamed(const dp_graph_t *g, const char *name)
{
    long u = unnamed_id(name);
    return u >= 0 && (size_t)u < g->njobs && (g->jobs[u].flags & DP_DEF_UNNAMED) ? u : -1;
}

/* A graph that keeps its order has no name order to binary-search once
 * validate dropped its index: the first lookup by name makes the index
 * again (possibly on several threads at once: one publishes it, the others
 * free theirs). NULL without memory. */
static const uint32_t *lazy_index(const dp_graph_t *g)
{
    dp_graph_t *gw = (dp_graph_t *)(uintptr_t)g;
    /* Acquire: the index's contents, written before its publication. */
    uint32_t *idx = atomic_load_explicit(&gw->lazy_index, memory_order_acquire);
    if (idx)
        return idx;
    idx = index_make(g, index_cap_for(g->nnamed), index_taggable(g));
    if (!idx)
        return NULL;
    uint32_t *none = NULL;
    /* Release: publishes the contents; acquire on failure: the winner's. */
    if (!atomic_compare_exchange_strong_explicit(&gw->lazy_index, &none, idx, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        free(idx);
        idx = none;
    }
    return idx;
}

/* Index lookup: job index or -1. Unnamed jobs by their "#ID" name, the
 * others in the index; without an index (dropped by validate) the jobs are
 * in name order (a binary search), or, in a graph that keeps its order, the
 * index is made again on demand. */
static long index_find(const dp_graph_t *g, const char *name)
{
    long u = find_unnamed(g, name);
    if (u >= 0)
        return u;
    if (g->index)
        return index_probe(g->index, g->index_cap, g->index_tagged, g->jobs, name, dp__hash_fnv1a(name), NULL);
    if (g->keep_order) {
        const uint32_t *idx = lazy_index(g);
        if (idx)
            return index_probe(idx, index_cap_for(g->nnamed), index_taggable(g), g->jobs, name, dp__hash_fnv1a(name),
                               NULL);
        for (size_t j = 0; j < g->njobs; j++) /* no memory for it: the slow way */
            if (g->jobs[j].name && strcmp(g->jobs[j].name, name) == 0)
                return (long)j;
        return -1;
    }
    size_t lo = 0, hi = g->njobs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->jobs[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int index_rebuild(dp_graph_t *g, size_t want)
{
    size_t cap = index_cap_for(want);
    bool tagged = index_taggable(g);
    uint32_t *idx = index_make(g, cap, tagged);
    if (!idx)
        return DP_ENOMEM;
    free(g->index);
    g->index = idx;
    g->index_cap = cap;
    g->index_tagged = tagged;
    return DP_OK;
}

/* Before the graph changes: the name index back (if validate dropped it)
 * and the edge list back from the CSR arrays (if validate dropped it), then
 * forget what validate built. */
static int unbuild(dp_graph_t *g)
{
    /* The common case while a graph is built: nothing to undo. */
    if (!g->validated && g->index && !atomic_load_explicit(&g->lazy_index, memory_order_relaxed))
        return DP_OK;
    uint32_t *lazy = atomic_exchange(&g->lazy_index, NULL);
    if (lazy && !g->index) {
        g->index = lazy; /* made for nnamed names, like index_rebuild */
        g->index_cap = index_cap_for(g->nnamed);
        g->index_tagged = index_taggable(g);
    } else {
        free(lazy);
    }
    if (!g->index && g->njobs && index_rebuild(g, g->nnamed) != DP_OK)
        return DP_ENOMEM;
    if (g->validated && g->validate_rc == DP_OK && g->dep_off) {
        size_t ne = g->dep_off[g->njobs];
        if (ne > g->edge_cap) {
            dp_edge_name_t *e = realloc(g->edges, ne * sizeof *e);
            if (!e)
                return DP_ENOMEM;
            g->edges = e;
            g->edge_cap = ne;
            g->edges_faulted = 0;
        }
        g->nedges = 0;
        for (size_t j = 0; j < g->njobs; j++)
            for (uint32_t k = g->dep_off[j]; k < g->dep_off[j + 1]; k++) {
                dp_edge_name_t *e = &g->edges[g->nedges++];
                e->job = (uint32_t)j;
                e->dep = g->dep_ids[k];
            }
    }
    free_built(g);
    return DP_OK;
}

/* A policy's hash, a word at a time (a byte at a time cost more than the
 * rest of adding a job). */
static uint64_t hash_pol(const dp_job_policy_t *p)
{
    _Static_assert(sizeof *p % sizeof(uint64_t) == 0, "a policy is whole words");
    const unsigned char *b = (const unsigned char *)p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof *p; i += sizeof(uint64_t)) {
        uint64_t w;
        memcpy(&w, b + i, sizeof w);
        h = (h ^ w) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    return h;
}

/* The index of policy p in the graph, added if new. -1: no memory. */
static long pol_intern(dp_graph_t *g, const dp_job_policy_t *p)
{
    /* Jobs added one after another mostly share their settings. */
    if (g->last_pol < g->npols && memcmp(&g->pols[g->last_pol], p, sizeof *p) == 0)
        return (long)g->last_pol;
    uint64_t h = hash_pol(p);
    if (g->pol_index_cap) {
        size_t mask = g->pol_index_cap - 1;
        for (size_t i = h & mask; g->pol_index[i]; i = (i + 1) & mask)
            if (memcmp(&g->pols[g->pol_index[i] - 1], p, sizeof *p) == 0)
                return (long)(g->last_pol = g->pol_index[i] - 1);
    }
    if (g->npols == g->pols_cap) {
        size_t ncap = g->pols_cap ? g->pols_cap * 2 : 4;
        dp_job_policy_t *np = realloc(g->pols, ncap * sizeof *np);
        if (!np)
            return -1;
        g->pols = np;
        g->pols_cap = ncap;
    }
    if ((g->npols + 1) * 2 >= g->pol_index_cap) {
        size_t cap = g->pol_index_cap ? g->pol_index_cap * 2 : 16;
        uint32_t *idx = calloc(cap, sizeof *idx);
        if (!idx)
            return -1;
        for (size_t k = 0; k < g->npols; k++) {
            size_t i = hash_pol(&g->pols[k]) & (cap - 1);
            while (idx[i])
                i = (i + 1) & (cap - 1);
            idx[i] = (uint32_t)k + 1;
        }
        free(g->pol_index);
        g->pol_index = idx;
        g->pol_index_cap = cap;
    }
    size_t mask = g->pol_index_cap - 1, i = h & mask;
    while (g->pol_index[i])
        i = (i + 1) & mask;
    g->pols[g->npols] = *p;
    g->pol_index[i] = (uint32_t)g->npols + 1;
    g->last_pol = g->npols;
    return (long)g->npols++;
}

const dp_pol_ext_t dp__pol_ext_none;

/* Whether a spec has any of the 1.2 settings: most have none, and their
 * policies no ext. */
static bool ext_set(const dp_job_spec_t *s)
{
    /* One test of the words or'ed together (the backoff's bits: -0.0 is
     * set too, and then valid), not a branch each: every job pays it. */
    const dp_readiness_ext_t *x = &s->readiness_ext;
    uint64_t b;
    memcpy(&b, &x->backoff, sizeof b);
    return (s->deadline_ms | x->initial_delay_ms | x->max_period_ms | x->success_threshold | x->failure_threshold |
            b) != 0;
}

/* The spec's 1.2 settings checked, and their index + 1 in g->exts into
 * *ext (added if new: a graph has few distinct ones, a linear search; an
 * entry whose job is refused later stays unused). Out of line and cold:
 * inlined into add_job, it cost every job added ~25 instructions. */
__attribute__((noinline, cold)) static int ext_add(dp_graph_t *g, const dp_job_spec_t *spec, const char *name,
                                                   uint32_t *ext, char *err, size_t errlen)
{
    const char *bad = dp__readiness_ext_invalid(&spec->readiness_ext, spec->readiness.period_ms);
    if (bad)
        return dp__seterr(err, errlen, DP_EINVAL, "job \"%s\": %s", name, bad);
    dp_pol_ext_t e;
    memset(&e, 0, sizeof e); /* padding too: compared as bytes */
    e.readiness_ext = spec->readiness_ext;
    e.deadline_ms = spec->deadline_ms;
    for (size_t i = 0; i < g->nexts; i++)
        if (memcmp(&g->exts[i], &e, sizeof e) == 0) {
            *ext = (uint32_t)i + 1;
            return DP_OK;
        }
    dp_pol_ext_t *ne = realloc(g->exts, (g->nexts + 1) * sizeof *ne);
    if (!ne)
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    g->exts = ne;
    g->exts[g->nexts++] = e;
    *ext = (uint32_t)g->nexts;
    return DP_OK;
}

/* The graph's copy of a plugin name: one per distinct name (a graph has
 * many jobs of few plugins). */
static char *plugin_copy(dp_graph_t *g, const char *plugin)
{
    for (size_t i = g->nplugins; i-- > 0;)
        if (strcmp(g->plugins[i], plugin) == 0)
            return g->plugins[i];
    char **np = realloc(g->plugins, (g->nplugins + 1) * sizeof *np);
    if (!np)
        return NULL;
    g->plugins = np;
    if (!(np[g->nplugins] = strdup(plugin)))
        return NULL;
    return np[g->nplugins++];
}

/* The graph's copy of a job's pool name: one per distinct name. */
static char *pool_name_copy(dp_graph_t *g, const char *pool)
{
    for (size_t i = g->npool_names; i-- > 0;)
        if (strcmp(g->pool_names[i], pool) == 0)
            return g->pool_names[i];
    char **np = realloc(g->pool_names, (g->npool_names + 1) * sizeof *np);
    if (!np)
        return NULL;
    g->pool_names = np;
    if (!(np[g->npool_names] = strdup(pool)))
        return NULL;
    return np[g->npool_names++];
}

/* The job and edge arrays are faulted in ahead of their writes, a stretch
 * at a time (bigmem.h): one system call per FAULT_AHEAD bytes instead of a
 * page fault per page as jobs and dependencies are added, and only the
 * room about to be used, so a size hint above the graph's size costs no
 * memory. Entries below *faulted are in; after a realloc the caller sets it
 * to 0 (the pages past the copy may be fresh). */
#define FAULT_AHEAD ((size_t)256 << 10)

static __attribute__((noinline)) void fault_ahead(void *base, size_t size, size_t used, size_t cap, size_t *faulted)
{
    size_t to = used + FAULT_AHEAD / size < cap ? used + FAULT_AHEAD / size : cap;
    dp__bigmem_prefault((char *)base + used * size, (to - used) * size);
    *faulted = to;
}

int dp__graph_reserve(dp_graph_t *g, size_t njobs, size_t nedges)
{
    if (!g)
        return DP_EINVAL;
    if (unbuild(g) != DP_OK)
        return DP_ENOMEM;
    if (njobs > g->cap) {
        dp_job_def_t *nj = realloc(g->jobs, njobs * sizeof *nj);
        if (!nj)
            return DP_ENOMEM;
        g->jobs = nj;
        g->cap = njobs;
        g->jobs_faulted = 0; /* past the copy, fresh pages maybe */
    }
    if (njobs * 2 + 2 > g->index_cap && index_rebuild(g, njobs) != DP_OK)
        return DP_ENOMEM; /* room for them all named (unnamed ones take none) */
    if (nedges > g->edge_cap) {
        dp_edge_name_t *ne = realloc(g->edges, nedges * sizeof *ne);
        if (!ne)
            return DP_ENOMEM;
        g->edges = ne;
        g->edge_cap = nedges;
        g->edges_faulted = 0;
    }
    return DP_OK;
}

void dp_job_spec_init_sized(dp_job_spec_t *spec, size_t size)
{
    dp_job_spec_t d;
    memset(&d, 0, sizeof d);
    d.backoff.initial_ms = 1000;
    d.backoff.factor = 2.0;
    d.backoff.max_ms = 30000;
    d.backoff.jitter = 0.0;
    d.readiness.probe_timeout_ms = 30000;
    d.pool_slots = 1;
    memcpy(spec, &d, size < sizeof d ? size : sizeof d);
}

/* The 1.0 entry point (the header's macro makes new callers use the sized
 * one): a 1.0 struct ends after `limits`. */
void(dp_job_spec_init)(dp_job_spec_t *spec)
{
    dp_job_spec_init_sized(spec, DP__JOB_SPEC_SIZE_1_0);
}

const dp_job_spec_t *dp__job_spec_widen(const dp_job_spec_t *spec, size_t size, dp_job_spec_t *full)
{
    if (!spec || size >= sizeof *full)
        return spec;
    dp_job_spec_init_sized(full, sizeof *full);
    memcpy(full, spec, size);
    return full;
}

/* The name "#ID" of an unnamed job, into buf (at least 12 bytes). */
static const char *unnamed(char *buf, uint32_t id)
{
    char tmp[10];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + id % 10);
    while ((id /= 10) != 0);
    buf[0] = '#';
    for (size_t i = 0; i < n; i++)
        buf[1 + i] = tmp[n - 1 - i];
    buf[1 + n] = '\0';
    return buf;
}

/* Adds a job; its id (the index it gets) into *id. */
static int add_job(dp_graph_t *g, const dp_job_spec_t *spec, bool name_optional, uint32_t *id, char *err, size_t errlen)
{
    if (!g || !spec || (!name_optional && !spec->name) || (spec->name && !*spec->name))
        return dp__seterr(err, errlen, DP_EINVAL, "a job needs a non-empty name");
    if (atomic_load(&g->running))
        return dp__seterr(err, errlen, DP_EBUSY, "graph is running; add jobs between runs");
    if (g->njobs >= UINT32_MAX - 1)
        return dp__seterr(err, errlen, DP_EINVAL, "too many jobs");
    char namebuf[12];
    const char *name = spec->name ? spec->name : unnamed(namebuf, (uint32_t)g->njobs);
    if (!spec->run && !spec->check)
        return dp__seterr(err, errlen, DP_ENOJOB, "job \"%s\" has neither run nor check", name);
    if ((unsigned)spec->run_if > DP_RUN_IF_ANY_FAILED)
        return dp__seterr(err, errlen, DP_EINVAL, "job \"%s\": run_if %d is no dp_run_if_t", name, (int)spec->run_if);
    if (spec->backoff.factor < 0 || spec->backoff.jitter < 0 || spec->backoff.jitter > 1)
        return dp__seterr(err, errlen, DP_EINVAL, "job \"%s\": backoff factor must be >= 0 and jitter within 0..1",
                          name);
    if (spec->pool && (!*spec->pool || spec->pool_slots < 1))
        return dp__seterr(err, errlen, DP_EINVAL,
                          "job \"%s\": a pool needs a non-empty name and pool_slots of at least 1 (found %u)", name,
                          spec->pool_slots);
    uint32_t ext = 0;
    if (__builtin_expect(ext_set(spec), 0)) {
        int rc = ext_add(g, spec, name, &ext, err, errlen);
        if (rc != DP_OK)
            return rc;
    }
    if (unbuild(g) != DP_OK)
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    if (g->njobs == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 16;
        dp_job_def_t *nj = realloc(g->jobs, ncap * sizeof *nj);
        if (!nj)
            return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
        g->jobs = nj;
        g->cap = ncap;
        g->jobs_faulted = 0;
    }
    if (__builtin_expect(g->njobs >= g->jobs_faulted, 0))
        fault_ahead(g->jobs, sizeof *g->jobs, g->njobs, g->cap, &g->jobs_faulted);
    /* A named job: one hash of the name, whose probe, finding no duplicate,
     * ends on the slot the job goes into. An unnamed one takes no slot and
     * needs no probe unless someone named a job like an unnamed one. */
    size_t slot = 0;
    uint64_t h = 0;
    long dup = -1;
    /* Past 2^24 jobs the index's entries have no room for tags. */
    if (g->index_tagged && g->njobs + 1 >= TAG_JOBS - 1) {
        g->index_tagged = false; /* index_taggable says the same from here on */
        if (index_rebuild(g, g->nnamed) != DP_OK)
            return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    }
    if (spec->name) {
        if ((g->nnamed + 1) * 2 + 2 > g->index_cap && index_rebuild(g, g->nnamed + 1) != DP_OK)
            return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
        h = dp__hash_fnv1a(name);
        dup = find_unnamed(g, name);
        if (dup < 0)
            dup = index_probe(g->index, g->index_cap, g->index_tagged, g->jobs, name, h, &slot);
    } else if (g->nhashnamed) {
        dup = index_probe(g->index, g->index_cap, g->index_tagged, g->jobs, name, dp__hash_fnv1a(name), NULL);
    }
    if (dup >= 0) {
        if (!spec->name)
            return dp__seterr(err, errlen, DP_EDUPLICATE,
                              "unnamed job %zu would be named \"%s\", but job %ld has that "
                              "name; name one of them (\"#ID\" names belong to unnamed jobs)",
                              g->njobs, name, dup);
        return dp__seterr(err, errlen, DP_EDUPLICATE, "duplicate job name \"%s\"", name);
    }
    dp_job_policy_t pol;
    memset(&pol, 0, sizeof pol); /* padding too: policies compare as bytes */
    pol.check = spec->check;
    pol.user_free = spec->user_free;
    pol.attempt_end = spec->attempt_end;
    pol.plugin = spec->plugin ? plugin_copy(g, spec->plugin) : NULL;
    pol.timeout_ms = spec->timeout_ms;
    pol.retries = spec->retries;
    pol.backoff = spec->backoff;
    pol.readiness = spec->readiness;
    pol.ext = ext;
    pol.pool = spec->pool ? pool_name_copy(g, spec->pool) : NULL;
    pol.pool_slots = pol.pool ? spec->pool_slots : 0;
    pol.priority = spec->priority;
    pol.cleanup_timeout_ms = spec->cleanup_timeout_ms;
    pol.run_if = (uint32_t)spec->run_if;
    pol.continue_on_failure = spec->continue_on_failure;
    long pi = (spec->plugin && !pol.plugin) || (spec->pool && !pol.pool) ? -1 : pol_intern(g, &pol);
    dp_job_def_t *d = &g->jobs[g->njobs];
    /* An unnamed job's name is written out only if someone asks for it. */
    d->name = pi < 0 || !spec->name ? NULL : dp__strarena_copy(&g->names, name);
    if (pi < 0 || (spec->name && !d->name))
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory"); /* a policy may stay unused */
    d->run = spec->run;
    d->user = spec->user;
    d->pol = (uint32_t)pi;
    d->flags = (!spec->check && !spec->timeout_ms && !spec->deadline_ms ? DP_DEF_PLAIN : 0) |
               (spec->name ? 0 : DP_DEF_UNNAMED);
    if (spec->name) {
        g->index[slot] = index_entry((uint32_t)g->njobs, h, g->index_tagged);
        g->nnamed++;
        if (unnamed_id(name) >= 0)
            g->nhashnamed++;
    }
    if (spec->run_if != DP_RUN_IF_ALL_SUCCESS || spec->continue_on_failure)
        g->has_rules = true;
    if (id)
        *id = (uint32_t)g->njobs;
    g->njobs++;
    return DP_OK;
}

int dp_graph_add_job_sized(dp_graph_t *g, const dp_job_spec_t *spec, size_t size, char *err, size_t errlen)
{
    dp_job_spec_t full;
    return add_job(g, dp__job_spec_widen(spec, size, &full), false, NULL, err, errlen);
}

int(dp_graph_add_job)(dp_graph_t *g, const dp_job_spec_t *spec, char *err, size_t errlen)
{
    return dp_graph_add_job_sized(g, spec, DP__JOB_SPEC_SIZE_1_0, err, errlen);
}

int dp_graph_add_job_id_sized(dp_graph_t *g, const dp_job_spec_t *spec, size_t size, uint32_t *id, char *err,
                              size_t errlen)
{
    if (!id)
        return dp__seterr(err, errlen, DP_EINVAL, "dp_graph_add_job_id needs somewhere to put the id");
    dp_job_spec_t full;
    int rc = add_job(g, dp__job_spec_widen(spec, size, &full), true, id, err, errlen);
    if (rc == DP_OK)
        g->keep_order = true; /* from now on validate renumbers nothing */
    return rc;
}

int(dp_graph_add_job_id)(dp_graph_t *g, const dp_job_spec_t *spec, uint32_t *id, char *err, size_t errlen)
{
    return dp_graph_add_job_id_sized(g, spec, DP__JOB_SPEC_SIZE_1_0, id, err, errlen);
}

dp_graph_t *dp_graph_new_hint(size_t jobs, size_t deps)
{
    dp_graph_t *g = dp_graph_new();
    if (g && (jobs || deps) && dp__graph_reserve(g, jobs, deps) != DP_OK) {
        dp_graph_free(g);
        return NULL;
    }
    return g;
}

/* Appends an edge as added (dep: an index, or DP_EDGE_FWD | a name's). */
static int edge_append(dp_graph_t *g, uint32_t job, uint32_t dep)
{
    if (g->nedges == g->edge_cap) {
        size_t ncap = g->edge_cap ? g->edge_cap * 2 : 16;
        dp_edge_name_t *ne = realloc(g->edges, ncap * sizeof *ne);
        if (!ne)
            return DP_ENOMEM;
        g->edges = ne;
        g->edge_cap = ncap;
        g->edges_faulted = 0;
    }
    if (__builtin_expect(g->nedges >= g->edges_faulted, 0))
        fault_ahead(g->edges, sizeof *g->edges, g->nedges, g->edge_cap, &g->edges_faulted);
    g->edges[g->nedges].job = job;
    g->edges[g->nedges].dep = dep;
    g->nedges++;
    return DP_OK;
}

int dp_graph_add_dep(dp_graph_t *g, const char *job, const char *dep)
{
    if (!g || !job || !dep)
        return DP_EINVAL;
    if (atomic_load(&g->running))
        return DP_EBUSY;
    long j = index_find(g, job);
    if (j < 0)
        return DP_ENOTFOUND;
    if (unbuild(g) != DP_OK)
        return DP_ENOMEM;
    /* A dependency already added is remembered by index, like the job
     * (no copy of its name: a large graph has ten times more edges than
     * jobs); only a forward reference keeps the name until validate.
     * Validate maps indices through the name sort. */
    long di = index_find(g, dep);
    if (di < 0) {
        if (g->nfwd == g->fwd_cap) {
            size_t ncap = g->fwd_cap ? g->fwd_cap * 2 : 16;
            char **nf = realloc(g->fwd, ncap * sizeof *nf);
            if (!nf)
                return DP_ENOMEM;
            g->fwd = nf;
            g->fwd_cap = ncap;
        }
        if (g->nfwd >= DP_EDGE_FWD || !(g->fwd[g->nfwd] = strdup(dep)))
            return DP_ENOMEM;
        di = (long)(DP_EDGE_FWD | g->nfwd++);
    }
    return edge_append(g, (uint32_t)j, (uint32_t)di);
}

int dp_graph_add_dep_ids(dp_graph_t *g, uint32_t job, uint32_t dep)
{
    if (!g)
        return DP_EINVAL;
    if (atomic_load(&g->running))
        return DP_EBUSY;
    if (job >= g->njobs || dep >= g->njobs)
        return DP_ENOTFOUND;
    if (job == dep)
        return DP_ESELF_DEP;
    if (g->validated && unbuild(g) != DP_OK)
        return DP_ENOMEM;
    int rc = edge_append(g, job, dep);
    if (rc == DP_OK)
        g->keep_order = true; /* the caller holds ids: keep them valid */
    return rc;
}

int dp__graph_add_dep_id(dp_graph_t *g, uint32_t job, uint32_t dep)
{
    if (!g || job >= g->njobs || dep >= g->njobs)
        return DP_EINVAL;
    if (atomic_load(&g->running))
        return DP_EBUSY;
    if (g->validated && unbuild(g) != DP_OK)
        return DP_ENOMEM;
    return edge_append(g, job, dep);
}

static int cmp_def_name(const void *a, const void *b)
{
    return strcmp(((const dp_job_def_t *)a)->name, ((const dp_job_def_t *)b)->name);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* After Kahn's traversal left some jobs unprocessed (indeg > 0 each), walks
 * dependencies from the smallest remaining name until a job repeats: that
 * loop is a cycle, each job depending on the next and the last on the
 * first. Returns it as a malloc'd array of *len ids, or NULL without
 * memory. */
static uint32_t *find_cycle(const dp_graph_t *g, const uint32_t *indeg, size_t *len)
{
    size_t n = g->njobs;
    uint32_t start = 0;
    while (start < n && indeg[start] == 0)
        start++;
    uint32_t *pos = calloc(n, sizeof *pos); /* position on the path + 1 */
    uint32_t *path = malloc(n * sizeof *path);
    if (!pos || !path) {
        free(pos);
        free(path);
        return NULL;
    }
    size_t plen = 0;
    uint32_t cur = start;
    while (!pos[cur]) {
        pos[cur] = (uint32_t)plen + 1;
        path[plen++] = cur;
        /* Any dependency still unprocessed continues the walk; the
         * smallest keeps the answer deterministic. */
        uint32_t next = cur;
        for (uint32_t k = g->dep_off[cur]; k < g->dep_off[cur + 1]; k++) {
            if (indeg[g->dep_ids[k]] > 0) {
                next = g->dep_ids[k];
                break;
            }
        }
        cur = next;
    }
    /* The walk entered the cycle at cur: what came before is not part of it. */
    size_t from = pos[cur] - 1;
    *len = plen - from;
    memmove(path, path + from, *len * sizeof *path);
    free(pos);
    return path;
}

/* The message for a cycle: "cycle: a -> b -> a (each job depends on the
 * next)"; "cycle among the jobs" when the cycle could not be found. */
static int report_cycle(const dp_graph_t *g, const uint32_t *cycle, size_t len, char *err, size_t errlen)
{
    if (!cycle)
        return dp__seterr(err, errlen, DP_ECYCLE, "cycle among the jobs");
    char *msg = NULL;
    size_t mlen = 0;
    /* A long cycle (10 000 jobs) is shortened on purpose, to its first and
     * last jobs and how many are between, rather than cut mid-name by the
     * caller's buffer: whole up to CYCLE_WHOLE jobs and ~600 bytes. */
    enum { CYCLE_WHOLE = 16, CYCLE_HEAD = 8, CYCLE_TAIL = 7, CYCLE_BYTES = 300 };
    size_t bytes = 0, head = len, tail = 0;
    for (size_t i = 0; i < len && bytes <= 2 * CYCLE_BYTES; i++)
        bytes += strlen(dp__job_name(g, cycle[i])) + 4;
    if (len > CYCLE_WHOLE || bytes > 2 * CYCLE_BYTES) {
        head = tail = 0;
        for (size_t b = 0; head < CYCLE_HEAD && (head == 0 || b < CYCLE_BYTES); head++)
            b += strlen(dp__job_name(g, cycle[head])) + 4;
        for (size_t b = 0; tail < CYCLE_TAIL && head + tail < len - 1 && (tail == 0 || b < CYCLE_BYTES); tail++)
            b += strlen(dp__job_name(g, cycle[len - 1 - tail])) + 4;
        if (len - head - tail < 2) /* "... 1 more ..." says no less than the name */
            head = len, tail = 0;
    }
    FILE *f = open_memstream(&msg, &mlen);
    if (f) {
        fputs("cycle: ", f);
        for (size_t i = 0; i < head; i++)
            fprintf(f, "%s -> ", dp__job_name(g, cycle[i]));
        if (head + tail < len)
            fprintf(f, "... %zu more ... -> ", len - head - tail);
        for (size_t i = len - tail; i < len; i++)
            fprintf(f, "%s -> ", dp__job_name(g, cycle[i]));
        fprintf(f, "%s (each job depends on the next)", dp__job_name(g, cycle[0]));
        fclose(f);
    }
    int rc = dp__seterr(err, errlen, DP_ECYCLE, "%s", msg ? msg : "cycle among the jobs");
    free(msg);
    return rc;
}

static int fail(dp_graph_t *g, int rc, char *err, size_t errlen, const char *msg)
{
    g->validated = 1;
    g->validate_rc = rc;
    g->validate_msg = strdup(msg);
    return dp__seterr(err, errlen, rc, "%s", msg);
}

/* Validation, last step, for a graph with trigger rules (rules.h): a
 * handler (run_if any_failed) needs a dependency that could fail. */
static int check_rules(const dp_graph_t *g, char *msg, size_t len)
{
    for (size_t j = 0; j < g->njobs; j++)
        if (dp__def_pol(g, &g->jobs[j])->run_if == DP_RUN_IF_ANY_FAILED && g->dep_off[j + 1] == g->dep_off[j]) {
            snprintf(msg, len,
                     "job \"%s\" has run_if any_failed but no dependency: it could never run; add the jobs "
                     "whose failure it handles as its dependencies, or remove run_if",
                     dp__job_name(g, (uint32_t)j));
            return DP_EINVAL;
        }
    return DP_OK;
}

/* Validation, step 1: sorts the jobs by name (ids become name order) and
 * renumbers the edges, which hold insertion indices. DP_OK or DP_ENOMEM. */
static int sort_jobs(dp_graph_t *g)
{
    size_t n = g->njobs;
    /* Jobs often arrive in name order already (generated names, sorted
     * files): then there is nothing to move, and the index stays valid. */
    bool sorted = true;
    for (size_t j = 1; j < n && sorted; j++)
        sorted = strcmp(g->jobs[j - 1].name, g->jobs[j].name) < 0;
    if (sorted)
        return DP_OK;
    uint32_t *old2new = malloc(n * sizeof *old2new);
    char **names_before = malloc(n * sizeof *names_before);
    if (!old2new || !names_before)
        goto oom;
    for (size_t j = 0; j < n; j++)
        names_before[j] = g->jobs[j].name;
    /* An empty graph has no jobs array at all, and qsort(NULL, 0, ...) is
     * undefined behaviour (UBSan reports it); a graph of one is sorted. */
    qsort(g->jobs, n, sizeof *g->jobs, cmp_def_name);
    if (index_rebuild(g, n) != DP_OK)
        goto oom;
    for (size_t j = 0; j < n; j++)
        old2new[j] = (uint32_t)index_find(g, names_before[j]);
    free(names_before);
    for (size_t e = 0; e < g->nedges; e++) {
        g->edges[e].job = old2new[g->edges[e].job];
        if (!(g->edges[e].dep & DP_EDGE_FWD))
            g->edges[e].dep = old2new[g->edges[e].dep];
    }
    free(old2new);
    return DP_OK;

oom:
    free(old2new);
    free(names_before);
    return DP_ENOMEM;
}

/* Step 2: resolves the dependencies added by name (in place: an edge then
 * holds ids only), refuses unknown and self dependencies (msg says which),
 * and counts each job's dependencies into dep_off[j + 1]. The name index
 * goes (the jobs are in name order now: index_find searches them). */
static int resolve_deps(dp_graph_t *g, char *msg, size_t msglen, bool *grouped, bool *forward)
{
    size_t n = g->njobs;
    /* grouped: the edges come job by job (each job's edges together, jobs
     * in increasing order), as a caller that adds a job's dependencies when
     * it adds the job makes them; forward: every dependency has a smaller
     * id than its job (jobs added in a topological order). */
    bool gr = true, fw = true;
    uint32_t prev = 0;
    g->dep_off = calloc(n + 1, sizeof *g->dep_off);
    g->succ_off = calloc(n + 1, sizeof *g->succ_off);
    if (!g->dep_off || !g->succ_off)
        return DP_ENOMEM;
    /* Both written whole below, as are dep_ids, succ_ids and the ranks. */
    dp__bigmem_prefault(g->dep_off, (n + 1) * sizeof *g->dep_off);
    dp__bigmem_prefault(g->succ_off, (n + 1) * sizeof *g->succ_off);
    for (size_t e = 0; e < g->nedges; e++) {
        dp_edge_name_t *ed = &g->edges[e];
        long d = (long)ed->dep;
        if (ed->dep & DP_EDGE_FWD) {
            const char *dn = g->fwd[ed->dep & ~DP_EDGE_FWD];
            d = index_find(g, dn);
            if (d < 0) {
                snprintf(msg, msglen, "job \"%s\" depends on unknown job \"%s\"", dp__job_name(g, ed->job), dn);
                return DP_EUNKNOWN_DEP;
            }
        }
        if ((uint32_t)d == ed->job) {
            snprintf(msg, msglen, "job \"%s\" depends on itself", dp__job_name(g, (uint32_t)d));
            return DP_ESELF_DEP;
        }
        gr = gr && ed->job >= prev;
        fw = fw && (uint32_t)d < ed->job;
        prev = ed->job;
        g->dep_off[ed->job + 1]++;
    }
    *grouped = gr;
    *forward = fw;
    /* Every name resolved: edges refer by index from here on. */
    for (size_t e = 0; e < g->nedges; e++) {
        dp_edge_name_t *ed = &g->edges[e];
        if (ed->dep & DP_EDGE_FWD)
            ed->dep = (uint32_t)index_find(g, g->fwd[ed->dep & ~DP_EDGE_FWD]);
    }
    for (size_t i = 0; i < g->nfwd; i++)
        free(g->fwd[i]);
    g->nfwd = 0;
    /* Freed before the CSR arrays are made, so that they do not add up. */
    free(g->index);
    g->index = NULL;
    g->index_cap = 0;
    return DP_OK;
}

/* Step 3: the dependency lists in CSR form (dep_off, dep_ids), each sorted
 * and without repeats ("a" listed twice). fill: scratch of n counters. */
static int build_deps(dp_graph_t *g, uint32_t *fill)
{
    size_t n = g->njobs;
    for (size_t j = 0; j < n; j++)
        g->dep_off[j + 1] += g->dep_off[j];
    g->dep_ids = malloc((g->nedges ? g->nedges : 1) * sizeof *g->dep_ids);
    if (!g->dep_ids)
        return DP_ENOMEM;
    dp__bigmem_prefault(g->dep_ids, g->nedges * sizeof *g->dep_ids);
    for (size_t e = 0; e < g->nedges; e++) {
        uint32_t j = g->edges[e].job;
        g->dep_ids[g->dep_off[j] + fill[j]++] = g->edges[e].dep;
    }
    size_t w = 0;
    for (size_t j = 0; j < n; j++) {
        uint32_t b = g->dep_off[j], e = g->dep_off[j + 1];
        if (e - b > 16) {
            qsort(g->dep_ids + b, e - b, sizeof *g->dep_ids, cmp_u32);
        } else { /* the usual few: insertion sort, no qsort call per job */
            for (uint32_t k = b + 1; k < e; k++) {
                uint32_t v = g->dep_ids[k], m = k;
                for (; m > b && g->dep_ids[m - 1] > v; m--)
                    g->dep_ids[m] = g->dep_ids[m - 1];
                g->dep_ids[m] = v;
            }
        }
        g->dep_off[j] = (uint32_t)w;
        for (uint32_t k = b; k < e; k++)
            if (k == b || g->dep_ids[k] != g->dep_ids[k - 1])
                g->dep_ids[w++] = g->dep_ids[k];
    }
    g->dep_off[n] = (uint32_t)w;
    return DP_OK;
}

/* Step 3 for edges that come job by job and all point back (resolve_deps'
 * grouped and forward): the edge list becomes dep_ids in place (each 8-byte
 * edge's dependency written over the list's first half, front to back, a
 * write never reaching an edge not yet read), then each job's list sorted
 * and without repeats as in build_deps, and the list's memory shrunk to
 * it. No second array, no scatter: a large graph built through ids skips
 * most of what validate costs. The edge list is gone after; nothing can
 * fail from here (succ_ids was allocated before), and such a graph has no
 * cycle, so nothing needs the edges back but a later change (unbuild makes
 * them again from the CSR arrays). */
static void build_deps_in_place(dp_graph_t *g)
{
    size_t n = g->njobs, ne = g->nedges;
    for (size_t j = 0; j < n; j++)
        g->dep_off[j + 1] += g->dep_off[j];
    uint32_t *ids = (uint32_t *)(void *)g->edges;
    for (size_t e = 0; e < ne; e++) {
        uint32_t d = g->edges[e].dep;
        ids[e] = d;
    }
    g->edges = NULL;
    g->nedges = g->edge_cap = g->edges_faulted = 0;
    size_t w = 0;
    for (size_t j = 0; j < n; j++) {
        uint32_t b = g->dep_off[j], e = g->dep_off[j + 1];
        for (uint32_t k = b + 1; k < e; k++) { /* usually already sorted */
            uint32_t v = ids[k], m = k;
            for (; m > b && ids[m - 1] > v; m--)
                ids[m] = ids[m - 1];
            ids[m] = v;
        }
        g->dep_off[j] = (uint32_t)w;
        for (uint32_t k = b; k < e; k++)
            if (k == b || ids[k] != ids[k - 1])
                ids[w++] = ids[k];
    }
    g->dep_off[n] = (uint32_t)w;
    uint32_t *shrunk = realloc(ids, (w ? w : 1) * sizeof *ids);
    g->dep_ids = shrunk ? shrunk : ids;
}

/* Step 4: the successor lists (succ_off, succ_ids), the transpose, filled
 * in increasing job order so each list comes out sorted. fill: scratch of
 * n counters. succ_ids: room for them made before, or NULL. */
static int build_succs(dp_graph_t *g, uint32_t *fill, uint32_t *succ_ids)
{
    size_t n = g->njobs, nedges = g->dep_off[n];
    for (size_t j = 0; j < n; j++)
        for (uint32_t k = g->dep_off[j]; k < g->dep_off[j + 1]; k++)
            g->succ_off[g->dep_ids[k] + 1]++;
    g->branching = false;
    for (size_t j = 0; j < n; j++) {
        g->branching |= g->succ_off[j + 1] > 1;
        g->succ_off[j + 1] += g->succ_off[j];
    }
    g->succ_ids = succ_ids ? succ_ids : malloc((nedges ? nedges : 1) * sizeof *g->succ_ids);
    if (!g->succ_ids)
        return DP_ENOMEM;
    dp__bigmem_prefault(g->succ_ids, nedges * sizeof *g->succ_ids);
    memset(fill, 0, (n ? n : 1) * sizeof *fill);
    for (size_t j = 0; j < n; j++)
        for (uint32_t k = g->dep_off[j]; k < g->dep_off[j + 1]; k++) {
            uint32_t d = g->dep_ids[k];
            g->succ_ids[g->succ_off[d] + fill[d]++] = (uint32_t)j;
        }
    return DP_OK;
}

/* Step 5: Kahn's traversal, for cycles (and the number of roots). Leaves
 * in indeg (n counters) each job's dependencies not processed: above zero
 * exactly for the jobs on or below a cycle. *acyclic: whether all were
 * processed. DP_OK or DP_ENOMEM. */
static int check_acyclic(dp_graph_t *g, uint32_t *indeg, uint32_t *order, bool *acyclic)
{
    size_t n = g->njobs;
    size_t head = 0, tail = 0;
    for (size_t j = 0; j < n; j++) {
        indeg[j] = g->dep_off[j + 1] - g->dep_off[j];
        if (!indeg[j])
            order[tail++] = (uint32_t)j;
    }
    g->nroots = tail;
    while (head < tail) {
        uint32_t j = order[head++];
        for (uint32_t k = g->succ_off[j]; k < g->succ_off[j + 1]; k++)
            if (--indeg[g->succ_ids[k]] == 0)
                order[tail++] = g->succ_ids[k];
    }
    *acyclic = tail == n;
    return DP_OK;
}

/* Validate's scratch, two arrays of n counters (zeroed): the graph's run
 * scratch (dp_graph.run_scratch), made here if it is smaller. A run needs
 * about as much (its dependency counters and ready queue), so the first run
 * finds its scratch already faulted in instead of paying for fresh pages
 * (bench/README.md: the first run). Room for the tickets of up to
 * SCRATCH_WORKERS workers too; a run with more grows it (realloc). NULL
 * without memory. */
#define SCRATCH_WORKERS 64

static uint32_t *validate_scratch(dp_graph_t *g)
{
    size_t n = g->njobs ? g->njobs : 1;
    size_t need = 2 * n * sizeof(uint32_t);
    if (g->run_scratch_size < need) {
        size_t size = need + 4 * 64 + SCRATCH_WORKERS * 64;
        /* Zero: a run finds its queue's slots empty without clearing them
         * (for a large graph calloc maps fresh pages: nothing is touched). */
        void *sc = calloc(1, size);
        if (!sc)
            return NULL;
        free(g->run_scratch);
        g->run_scratch = sc;
        g->run_scratch_size = size;
    }
    memset(g->run_scratch, 0, n * sizeof(uint32_t));
    return g->run_scratch;
}

/* Zeroes [p, p + len): the whole pages in it given back to the kernel (they
 * read as zero again, and cost no memory until touched), the rest
 * written. */
static void drop_pages(char *p, size_t len)
{
    uintptr_t a = (uintptr_t)p, e = a + len;
    uintptr_t a2 = (a + 4095) & ~(uintptr_t)4095, e2 = e & ~(uintptr_t)4095;
    if (len < 64 * 1024 || e2 <= a2 || madvise((void *)a2, e2 - a2, MADV_DONTNEED) != 0) {
        memset(p, 0, len);
        return;
    }
    memset(p, 0, a2 - a);
    memset((void *)e2, 0, e - e2);
}

/* Leaves the run scratch as a run wants it (the layout is run.c's
 * take_scratch: the dependency counters in the first n words, the ready
 * queue's slots from the next 64-byte boundary, which must be zero) and
 * no bigger than the run will use: what validate touched there but a run
 * will not is given back. kahn: Kahn's order went where the queue goes. A
 * run pushes at most the roots plus every successor but one of each job
 * onto the queue; counters are used only by jobs with two or more
 * dependencies (a chain, a fan, independent jobs: next to none). */
static void settle_scratch(dp_graph_t *g, bool kahn)
{
    size_t n = g->njobs, nn = n ? n : 1;
    char *sc = g->run_scratch;
    if (kahn && n) {
        size_t pushed = g->nroots, counted = 0;
        for (size_t j = 0; j < n; j++) {
            uint32_t ns = g->succ_off[j + 1] - g->succ_off[j];
            pushed += ns > 1 ? ns - 1 : 0;
            counted += g->dep_off[j + 1] - g->dep_off[j] > 1;
        }
        if (pushed > n)
            pushed = n;
        char *q = sc + nn * sizeof(uint32_t);
        memset(q, 0, pushed * sizeof(uint32_t));
        drop_pages(q + pushed * sizeof(uint32_t), (nn - pushed) * sizeof(uint32_t));
        if (counted * 16 < n)
            drop_pages(sc, nn * sizeof(uint32_t));
    } else if (n) {
        size_t counted = 0;
        for (size_t j = 0; j < n; j++)
            counted += g->dep_off[j + 1] - g->dep_off[j] > 1;
        if (counted * 16 < n)
            drop_pages(sc, nn * sizeof(uint32_t));
    }
}

int dp_graph_validate(dp_graph_t *g, char *err, size_t errlen)
{
    if (!g)
        return dp__seterr(err, errlen, DP_EINVAL, "no graph");
    if (g->validated)
        return g->validate_rc == DP_OK ? DP_OK
                                       : dp__seterr(err, errlen, g->validate_rc, "%s",
                                                    g->validate_msg ? g->validate_msg : dp_strerror(g->validate_rc));
    size_t n = g->njobs;
    char msg[1024];
    /* A graph that handed out ids keeps them: no sort, no renumbering. */
    int rc = g->keep_order ? DP_OK : sort_jobs(g);
    if (rc != DP_OK)
        goto oom;
    bool grouped = false, forward = false;
    rc = resolve_deps(g, msg, sizeof msg, &grouped, &forward);
    if (rc == DP_EUNKNOWN_DEP || rc == DP_ESELF_DEP) {
        free_built(g);
        return fail(g, rc, err, errlen, msg);
    }
    if (rc != DP_OK)
        goto oom;
    /* Scratch for the steps below: fill counts, then Kahn's in-degrees. */
    uint32_t *fill = validate_scratch(g);
    bool acyclic = false;
    if (fill && grouped && forward && g->nedges) {
        /* Jobs added in a topological order with their dependencies: the
         * edges become dep_ids in place, and no cycle is possible (every
         * edge points to a smaller id), so Kahn's pass is not needed. */
        uint32_t *succ_ids = malloc(g->nedges * sizeof *succ_ids);
        if (!succ_ids) {
            rc = DP_ENOMEM;
            goto oom;
        }
        build_deps_in_place(g);
        build_succs(g, fill, succ_ids); /* cannot fail: succ_ids is there */
        g->nroots = 0;
        for (size_t j = 0; j < n; j++)
            g->nroots += g->dep_off[j + 1] == g->dep_off[j];
        acyclic = true;
        /* Ids are a topological order. */
        rc = dp__gsched_build(g, NULL, msg, sizeof msg);
        settle_scratch(g, false);
    } else if (!fill || build_deps(g, fill) != DP_OK || build_succs(g, fill, NULL) != DP_OK ||
               check_acyclic(g, fill, fill + (n ? n : 1), &acyclic) != DP_OK) {
        rc = DP_ENOMEM;
        goto oom;
    } else if (acyclic) {
        /* Kahn's order is in the second half of the scratch until
         * settle_scratch clears it. */
        rc = dp__gsched_build(g, fill + (n ? n : 1), msg, sizeof msg);
        settle_scratch(g, true);
    } else {
        /* The cycle is found from the counters Kahn left in fill; then the
         * queue's part is zeroed (a run comes only after a change and a
         * validate that settles the counters again). */
        size_t nn = n ? n : 1;
        memset(fill + nn, 0, nn * sizeof *fill);
    }
    if (!acyclic) {
        size_t len = 0;
        uint32_t *cycle = find_cycle(g, fill, &len);
        rc = report_cycle(g, cycle, len, msg, sizeof msg);
        free_built(g);
        /* Kept for dp__graph_cycle until the graph changes. */
        g->cycle = cycle;
        g->ncycle = cycle ? len : 0;
        return fail(g, rc, err, errlen, msg);
    }
    if (rc == DP_ENOMEM)
        goto oom;
    if (rc != DP_OK) { /* a job's pool */
        free_built(g);
        return fail(g, rc, err, errlen, msg);
    }
    if (g->has_rules && check_rules(g, msg, sizeof msg) != DP_OK) {
        free_built(g);
        return fail(g, DP_EINVAL, err, errlen, msg);
    }
    g->validated = 1;
    g->validate_rc = DP_OK;
    /* Built: the CSR arrays hold the edges, and the jobs are in name order
     * (index_find searches them). What only building needed goes; unbuild
     * makes it again if the graph changes. */
    free(g->edges);
    g->edges = NULL;
    g->nedges = g->edge_cap = g->edges_faulted = 0;
    return DP_OK;

oom:
    free_built(g);
    return dp__seterr(err, errlen, rc, "out of memory");
}

size_t dp__graph_cycle(const dp_graph_t *g, const uint32_t **ids)
{
    *ids = g ? g->cycle : NULL;
    return g ? g->ncycle : 0;
}

size_t dp_graph_job_count(const dp_graph_t *g)
{
    return g ? g->njobs : 0;
}

const char *dp_graph_job_name(const dp_graph_t *g, size_t id)
{
    return g && id < g->njobs ? dp__job_name(g, (uint32_t)id) : NULL;
}

const char *dp_graph_job_plugin(const dp_graph_t *g, size_t id)
{
    return g && id < g->njobs ? dp__def_pol(g, &g->jobs[id])->plugin : NULL;
}

long dp_graph_job_id(const dp_graph_t *g, const char *name)
{
    return g && name ? index_find(g, name) : -1;
}

size_t dp_graph_deps(const dp_graph_t *g, size_t id, const uint32_t **ids)
{
    if (!g || !g->validated || g->validate_rc || id >= g->njobs) {
        *ids = NULL;
        return 0;
    }
    *ids = g->dep_ids + g->dep_off[id];
    return g->dep_off[id + 1] - g->dep_off[id];
}

size_t dp_graph_succs(const dp_graph_t *g, size_t id, const uint32_t **ids)
{
    if (!g || !g->validated || g->validate_rc || id >= g->njobs) {
        *ids = NULL;
        return 0;
    }
    *ids = g->succ_ids + g->succ_off[id];
    return g->succ_off[id + 1] - g->succ_off[id];
}

/* ------------------------------------------------------------------------ */
/* Pools and priorities: the graph's half (prio.h has the run's)            */
/* ------------------------------------------------------------------------ */

void dp__gsched_free(dp_graph_t *g)
{
    dp_gsched_t *gs = g->sched;
    if (!gs)
        return;
    free(gs->rank);
    free(gs->root_order);
    free(gs->pol_pool);
    free(gs->pool_max);
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
        gs->prioritized = gs->prioritized || g->pols[p].priority != 0;
    }
    gs->ordered = gs->prioritized;
    if (!any_pool)
        return DP_OK;
    gs->ordered = true;
    if (!(gs->pol_pool = calloc(g->npols, sizeof *gs->pol_pool)) ||
        !(gs->pool_max = calloc(g->npools ? g->npools : 1, sizeof *gs->pool_max)))
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
        if (pol->pool_slots > gs->pool_max[k])
            gs->pool_max[k] = pol->pool_slots;
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
    if (!gs->rank) {
        if (!(gs->rank = malloc((n ? n : 1) * sizeof *gs->rank)))
            return DP_ENOMEM;
        dp__bigmem_prefault(gs->rank, n * sizeof *gs->rank); /* written whole below */
    }
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
    dp__bigmem_prefault(gs->root_order, g->nroots * sizeof *gs->root_order);
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

/* Whether a run reads the paths, root order or levels (dag.h). */
static bool orders_read(const dp_graph_t *g, const dp_gsched_t *gs)
{
    return gs->ordered || g->nroots > 1 || g->branching;
}

int dp__gsched_build(dp_graph_t *g, const uint32_t *topo, char *msg, size_t msglen)
{
    dp__gsched_free(g);
    dp_gsched_t *gs = calloc(1, sizeof *gs);
    if (!gs)
        return DP_ENOMEM;
    g->sched = gs;
    int rc = resolve_pools(g, gs, msg, msglen);
    gs->ids_topo = topo == NULL;
    if (rc == DP_OK && topo && orders_read(g, gs))
        rc = make_orders(g, gs, topo);
    else if (rc == DP_OK)
        gs->stale = true; /* made before they are read (dp__gsched_refresh) */
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
    if (gs->ids_topo) {
        int rc = make_orders(g, gs, NULL);
        if (rc == DP_OK)
            gs->stale = false;
        return rc;
    }
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

int dp__gsched_refresh_for_run(dp_graph_t *g)
{
    return g->sched && orders_read(g, g->sched) ? dp__gsched_refresh(g) : DP_OK;
}

/* A waits array and its size, so that one given back is reused only by a
 * graph of the same size. */
struct dp_waits {
    size_t n;
    uint32_t v[];
};

uint32_t *dp__graph_waits_take(dp_graph_t *g)
{
    size_t n = g->njobs ? g->njobs : 1;
    struct dp_waits *w = atomic_exchange(&g->spare_waits, NULL);
    if (w && w->n == n) {
        memset(w->v, 0, n * sizeof *w->v);
        return w->v;
    }
    free(w);
    w = calloc(1, sizeof *w + n * sizeof *w->v);
    if (!w)
        return NULL;
    w->n = n;
    return w->v;
}

void dp__graph_waits_give(dp_graph_t *g, uint32_t *v)
{
    if (!v)
        return;
    struct dp_waits *w = (struct dp_waits *)(void *)((char *)v - offsetof(struct dp_waits, v));
    free(atomic_exchange(&g->spare_waits, w));
}

/* ------------------------------------------------------------------------ */
/* Pools and priorities: the public calls                                    */
/* ------------------------------------------------------------------------ */

int dp_graph_add_pool(dp_graph_t *g, const char *name, unsigned slots, char *err, size_t errlen)
{
    if (!g || !name || !*name)
        return dp__seterr(err, errlen, DP_EINVAL, "a pool needs a non-empty name");
    if (slots < 1)
        return dp__seterr(err, errlen, DP_EINVAL, "pool \"%s\" needs at least 1 slot (found 0)", name);
    if (atomic_load(&g->running))
        return dp__seterr(err, errlen, DP_EBUSY, "graph is running; add pools between runs");
    for (size_t i = 0; i < g->npools; i++)
        if (strcmp(g->pools[i].name, name) == 0)
            return dp__seterr(err, errlen, DP_EDUPLICATE, "duplicate pool name \"%s\"", name);
    dp_pool_def_t *np = realloc(g->pools, (g->npools + 1) * sizeof *np);
    if (!np)
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    g->pools = np;
    if (!(np[g->npools].name = strdup(name)) || unbuild(g) != DP_OK) {
        free(np[g->npools].name);
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    }
    np[g->npools++].slots = slots;
    return DP_OK;
}

size_t dp_graph_pool_count(const dp_graph_t *g)
{
    return g ? g->npools : 0;
}

const char *dp_graph_pool_name(const dp_graph_t *g, size_t i, unsigned *slots)
{
    if (!g || i >= g->npools)
        return NULL;
    if (slots)
        *slots = g->pools[i].slots;
    return g->pools[i].name;
}

const char *dp_graph_job_pool(const dp_graph_t *g, size_t id, unsigned *slots)
{
    if (!g || id >= g->njobs)
        return NULL;
    const dp_job_policy_t *pol = dp__def_pol(g, &g->jobs[id]);
    if (slots)
        *slots = pol->pool_slots;
    return pol->pool;
}

int dp_graph_job_priority(const dp_graph_t *g, size_t id)
{
    if (!g || id >= g->njobs)
        return 0;
    return dp__def_pol(g, &g->jobs[id])->priority;
}

uint64_t dp_graph_job_critical_path(const dp_graph_t *g, size_t id)
{
    if (!g || id >= g->njobs || !g->validated || g->validate_rc != DP_OK || !g->sched)
        return 0;
    const dp_gsched_t *gs = g->sched;
    if (gs->stale && dp__gsched_refresh((dp_graph_t *)(uintptr_t)g) != DP_OK)
        return 0;
    if (gs->rank)
        return gs->rank[id];
    return 1; /* no edges, no durations: every path is the job */
}

int dp_graph_set_expected_ms(dp_graph_t *g, size_t id, uint64_t ms)
{
    if (!g)
        return DP_EINVAL;
    if (atomic_load(&g->running))
        return DP_EBUSY;
    if (!g->validated || g->validate_rc != DP_OK || !g->sched)
        return DP_EINVAL;
    if (id >= g->njobs)
        return DP_ENOTFOUND;
    dp_gsched_t *gs = g->sched;
    if (!gs->expected && !(gs->expected = calloc(g->njobs ? g->njobs : 1, sizeof *gs->expected)))
        return DP_ENOMEM;
    gs->expected[id] = ms >= UINT64_MAX - 1 ? UINT64_MAX : ms + 1;
    gs->stale = true;
    return DP_OK;
}
