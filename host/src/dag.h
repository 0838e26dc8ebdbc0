/* dag.h - the job graph (private parts).
 *
 * Jobs are added by name in any order; dp_graph_validate() sorts them by
 * name (so ids are name order and every id list is also name-sorted),
 * resolves dependency names once, checks for errors and builds compressed
 * sparse row (CSR) arrays of dependencies and successors. A run touches
 * only these arrays.
 *
 * A graph built through ids (dp_graph_add_job_id, dp_graph_add_dep_ids)
 * keeps its order instead (dp_graph.keep_order): ids are positions as they
 * were when the first id was handed out, then insertion order, and validate
 * neither sorts nor renumbers. Its name index, dropped by validate like any
 * graph's, is made again on the first lookup by name (dp_graph.lazy_index).
 */
#ifndef DP_DAG_H
#define DP_DAG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"
#include "strarena.h"

/* The size of a dp_job_spec_t of a program built against a 1.0 header. */
#define DP__JOB_SPEC_SIZE_1_0 (offsetof(dp_job_spec_t, limits) + sizeof(dp_limits_t))

/* spec itself when `size` covers the whole current struct; else a copy in
 * *full of its first `size` bytes with defaults for the rest (the caller's
 * struct is older than this library's). */
const dp_job_spec_t *dp__job_spec_widen(const dp_job_spec_t *spec, size_t size, dp_job_spec_t *full);

/* The settings of 1.2 that few jobs have (dp_job_spec_t's readiness_ext and
 * deadline_ms), kept once per distinct combination in dp_graph.exts and
 * named by a policy's index: a policy of a job without them stays as small
 * (and as quick to compare when jobs are added) as before them. */
typedef struct dp_pol_ext {
    dp_readiness_ext_t readiness_ext;
    uint64_t deadline_ms;
} dp_pol_ext_t;

/* All zero: the dp_pol_ext_t of a policy without one. */
extern const dp_pol_ext_t dp__pol_ext_none;

/* What a job does with its attempts: the settings that a graph's jobs
 * mostly share (a workflow has many jobs and few distinct settings), kept
 * once per distinct combination in dp_graph.pols. Padding is zeroed, so
 * two policies are equal when their bytes are. */
typedef struct dp_job_policy {
    dp_job_cb check;
    dp_free_cb user_free;
    dp_job_end_cb attempt_end;
    const char *plugin; /* one of dp_graph.plugins, or NULL */
    uint64_t timeout_ms;
    unsigned retries;
    dp_backoff_t backoff;
    dp_readiness_t readiness;
    /* Appended (1.2): 1 + the index in dp_graph.exts of its readiness_ext
     * and deadline_ms; 0: none (dp__pol_ext). */
    uint32_t ext;
    /* Appended (prio.h): the pool (one of dp_graph.pool_names, or NULL),
     * the slots the job takes of it, its priority. */
    const char *pool;
    unsigned pool_slots;
    int priority;
    /* Trigger rules (rules.h): appended. */
    uint64_t cleanup_timeout_ms; /* 0: DP_CLEANUP_TIMEOUT_DEFAULT_MS */
    uint32_t run_if;             /* dp_run_if_t */
    uint32_t continue_on_failure;
} dp_job_policy_t;

/* A job: 32 bytes, what differs from job to job. */
typedef struct dp_job_def {
    char *name; /* NULL for an unnamed job: dp__job_name */
    dp_job_cb run;
    void *user;
    uint32_t pol;   /* index into dp_graph.pols */
    uint32_t flags; /* DP_DEF_* */
} dp_job_def_t;

/* No readiness check, no timeout and no deadline: the short path in job.c
 * may run it. */
#define DP_DEF_PLAIN 1u
/* Added without a name (dp_graph_add_job_id): named "#ID" by its id, found
 * by that name arithmetically, never in the name index; the name itself is
 * only written out when someone asks for it (dp__job_name). */
#define DP_DEF_UNNAMED 2u
/* Set by validate (prio.c): the job's successors' remaining paths differ,
 * so the one a worker goes on with after it is worth choosing (pool.c);
 * a fan's source or a chain's link skips the comparison. */
#define DP_DEF_SUCC_RANKS 4u

/* A dependency as added: 8 bytes (a large graph has ten times more edges
 * than jobs). dep is the dependency's index, or, with DP_EDGE_FWD set, the
 * index in dp_graph.fwd of its name: a job not added yet when the edge was. */
typedef struct dp_edge_name {
    uint32_t job; /* index at insertion time (renumbered by validate) */
    uint32_t dep;
} dp_edge_name_t;

#define DP_EDGE_FWD 0x80000000u

struct dp_graph {
    dp_job_def_t *jobs; /* insertion order until validated, then name order */
    size_t njobs, cap;
    size_t jobs_faulted;   /* entries below it faulted in ahead of add_job (dag.c fault_ahead) */
    dp_job_policy_t *pols; /* distinct policies, by index */
    size_t npols, pols_cap;
    uint32_t *pol_index;  /* open addressing: slot -> policy index + 1 */
    size_t pol_index_cap; /* power of two, > 2 * npols */
    /* Open-addressing name index of the named jobs: slot -> job index + 1,
     * with 8 bits of the name's hash above it while ids fit 24 bits
     * (index_tagged; a probe past another name then rarely touches it).
     * Needed while jobs are added
     * (duplicates); dropped by a successful validate, after which the jobs
     * are in name order and a binary search finds a name (or, keeping the
     * order, lazy_index). */
    uint32_t *index;
    dp_strarena_t names; /* where the jobs' names live */
    char **plugins;      /* distinct plugin names; jobs point at them */
    size_t nplugins;
    size_t index_cap;  /* power of two, > 2 * nnamed */
    bool index_tagged; /* its entries carry hash tags (dag.c) */
    size_t nnamed;     /* jobs with a name of their own (not DP_DEF_UNNAMED) */
    size_t nhashnamed; /* of which named like an unnamed job, "#ID" */

    /* Dependencies as added, resolved by validate, which then drops them
     * (the CSR arrays below hold the same); a change after that makes them
     * again from the CSR arrays. */
    dp_edge_name_t *edges;
    size_t nedges, edge_cap;
    size_t edges_faulted; /* as jobs_faulted, for edge_append */
    char **fwd;           /* names of dependencies added before their job */
    size_t nfwd, fwd_cap;

    /* The graph handed out ids (dp_graph_add_job_id, dp_graph_add_dep_ids):
     * validate keeps the jobs where they are, so those ids stay valid. */
    bool keep_order;
    /* keep_order graphs only: the name index made by the first lookup by
     * name after validate dropped `index` (lookups may come from several
     * threads: the first to finish publishes it). Same layout as `index`,
     * sized for nnamed as index_rebuild would; adopted as `index` when the
     * graph changes. */
    _Atomic(uint32_t *) lazy_index;
    /* The names of unnamed jobs, "#ID" at 12 * ID, made on the first demand
     * (possibly on several threads at once: one publishes it) for the jobs
     * there were then; a block made for fewer jobs stays (names handed out
     * point into it) on the `prev` chain until the graph is freed. */
    _Atomic(struct dp_unnamed_names *) unnamed_names;
    /* Reuse for pol_intern: the policy of the job added last (index), so
     * that a run of jobs with the same settings skips the hash. */
    size_t last_pol;

    int validated; /* 0 not yet, 1 done */
    int validate_rc;
    char *validate_msg;
    uint32_t *cycle; /* validate_rc DP_ECYCLE: the cycle (dp__graph_cycle) */
    size_t ncycle;

    /* Built by validate. */
    uint32_t *dep_off, *dep_ids;   /* deps of j: dep_ids[dep_off[j] .. dep_off[j+1]) */
    uint32_t *succ_off, *succ_ids; /* successors, same layout */
    size_t nroots;                 /* jobs with no dependency */
    bool branching;                /* a job has two successors or more */

    atomic_bool running;

    /* Per-run scratch kept between runs (run.c): a run's dependency
     * counters, ready queue and tickets. Reusing them spares every run
     * fresh pages, whose first-touch faults cost more than the jobs on some
     * machines. Validate uses it first as its own scratch (dag.c), so even
     * the first run finds it faulted in, and leaves it as a run wants it:
     * the queue's slots zero (a run leaves them so too, queue.h), and no
     * page the run will not touch kept. Owned by the graph; only validate
     * and the run holding `running` touch it. */
    void *run_scratch;
    size_t run_scratch_size;
    /* Slots of a finished run whose result was freed (record.h): the next run
     * takes them. Results are freed on any thread, hence atomic. */
    _Atomic(struct dp_slotbuf *) spare_slots;

    /* Appended (1.2): the distinct dp_pol_ext_t of its policies (few). */
    dp_pol_ext_t *exts;
    size_t nexts;
    /* Pools (dp_graph_add_pool), in the order added; pool_names: the
     * distinct names jobs gave (their policies point at them), resolved to
     * pools by validate. */
    struct dp_pool_def *pools;
    size_t npools;
    char **pool_names;
    size_t npool_names;
    /* Built by validate (prio.c): the critical paths, the roots' order,
     * the pools per policy, the priority levels; expected durations. */
    struct dp_gsched *sched;
    /* The pool waits array of a freed result (dp__graph_waits_give), for
     * the next run of a graph with pools. Results are freed on any thread,
     * hence atomic. */
    _Atomic(struct dp_waits *) spare_waits;
    /* A job has a run_if other than all_success or continue_on_failure:
     * runs take the rules' paths (rules.h). Never reset (jobs are never
     * removed). */
    bool has_rules;
};

typedef struct dp_pool_def {
    char *name;
    unsigned slots;
} dp_pool_def_t;

/* Job id's name: its own, or "#ID" for an unnamed job (made on demand;
 * NULL only when memory ran out). Any thread. */
const char *dp__job_name_slow(const dp_graph_t *g, uint32_t id);

static inline const char *dp__job_name(const dp_graph_t *g, uint32_t id)
{
    const char *n = g->jobs[id].name;
    return n ? n : dp__job_name_slow(g, id);
}

static inline const dp_job_policy_t *dp__def_pol(const dp_graph_t *g, const dp_job_def_t *d)
{
    return &g->pols[d->pol];
}

/* A policy's 1.2 settings (all zero for most). */
static inline const dp_pol_ext_t *dp__pol_ext(const dp_graph_t *g, const dp_job_policy_t *p)
{
    return p->ext ? &g->exts[p->ext - 1] : &dp__pol_ext_none;
}

/* Room for njobs jobs and nedges dependencies in all, so that a large graph
 * built in one go grows its arrays once. DP_OK or DP_ENOMEM. */
int dp__graph_reserve(dp_graph_t *g, size_t njobs, size_t nedges);

/* dp_graph_add_dep by index (private, for the workflow loader; the public
 * dp_graph_add_dep_ids also fixes the ids): job depends on dep, both as dp_graph_job_id
 * would answer now (insertion order until validate). No name lookups; for a
 * loader that resolved the names itself. DP_EINVAL for an index out of
 * range, DP_EBUSY while running, DP_ENOMEM. */
int dp__graph_add_dep_id(dp_graph_t *g, uint32_t job, uint32_t dep);

/* The cycle for which the last dp_graph_validate refused the graph
 * (DP_ECYCLE), as job ids (name order: dp_graph_job_name names them), each
 * job depending on the next and the last on the first, in the order of the
 * validate message ("cycle: a -> b -> a"). Returns how many; 0 and *ids
 * NULL when the graph was not refused for a cycle (or not validated since
 * it changed, or the cycle could not be found for lack of memory). *ids
 * points into the graph: valid until the graph changes or is freed. */
size_t dp__graph_cycle(const dp_graph_t *g, const uint32_t **ids);

/* Pools and priorities, the graph's half (dag.c; the run's: prio.h). */

/* A per-job array of pool waits (ms + 1, 0: none) for a run of g, all
 * zero: the one a freed result gave back when it has g's size, else a new
 * one. NULL: no memory. */
uint32_t *dp__graph_waits_take(dp_graph_t *g);
/* Gives such an array back to g (w may be NULL), for its next run. */
void dp__graph_waits_give(dp_graph_t *g, uint32_t *w);

typedef struct dp_gsched {
    /* Per job its remaining path, the job included; NULL for a graph
     * without edges (every path is the job's own weight). */
    uint32_t *rank;
    bool weighted;          /* rank counts expected ms, not jobs */
    uint32_t *root_order;   /* the roots, longest path first; NULL: id order (their paths are equal) */
    size_t nroot_order;     /* entries of root_order */
    uint32_t *pol_pool;     /* per policy: its pool's index + 1, 0 for none */
    bool ordered;           /* a pool, or a priority other than 0: runs may make a dp_sched_t (prio.h) */
    bool prioritized;       /* a priority other than 0 */
    uint32_t *pool_max;     /* per pool: the most slots one of its jobs asks for (0: no job in it) */
    uint32_t *level;        /* ordered: per job, the rank of its (priority, path) among the distinct ones */
    uint32_t nlevels;       /* ordered: distinct levels */
    uint32_t *plevel;       /* ordered: per job with a pool, its level among its pool's jobs' */
    uint32_t *pool_nlevels; /* ordered: per pool, the distinct levels of its jobs */
    /* Expected durations (dp_graph_set_expected_ms): ms + 1 per job, 0 not
     * given; NULL when none was. stale: the paths are to be made again
     * before the next run. */
    uint64_t *expected;
    bool stale;
    bool ids_topo; /* job ids are a topological order (the paths need no Kahn's pass) */
    /* The run's scratch, kept from run to run (a run holds g->running):
     * the bucket queues' arrays and the jobs' links. */
    void *scratch;
    size_t scratch_size;
} dp_gsched_t;

/* At the end of a successful validate (the graph's CSR arrays built, no
 * cycle): the pools resolved and the paths, root order and levels made;
 * when ids are a topological order, or when a run would read none of them
 * (dp__gsched_refresh_for_run), the paths are left stale instead, made by
 * the first refresh that needs them (a run's, or
 * dp_graph_job_critical_path), so that expected durations set between
 * validate and run (the command's state) do not make them twice, and a
 * chain's run never makes them. topo: the jobs in a topological order, or
 * NULL when ids are one. DP_OK;
 * DP_ENOTFOUND (unknown pool) or DP_EINVAL (more slots than the pool has)
 * with msg; DP_ENOMEM. */
int dp__gsched_build(dp_graph_t *g, const uint32_t *topo, char *msg, size_t msglen);

/* Frees g->sched (and NULLs it). */
void dp__gsched_free(dp_graph_t *g);

/* The paths, root order and levels made if stale (expected durations
 * changed since, or validate left them for later). DP_OK or DP_ENOMEM. */
int dp__gsched_refresh(dp_graph_t *g);

/* dp__gsched_refresh, but only when a run reads the paths, the root order
 * or the levels: a graph with a pool or a priority, more than one root, or
 * a job with two successors or more. A chain's first run would otherwise
 * make (and fault in) a path per job that nothing reads. */
int dp__gsched_refresh_for_run(dp_graph_t *g);

#endif /* DP_DAG_H */
