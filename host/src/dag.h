/* dag.h - the job graph (private parts).
 *
 * Jobs are added by name in any order; dp_graph_validate() sorts them by
 * name (so ids are name order and every id list is also name-sorted),
 * resolves dependency names once, checks for errors and builds compressed
 * sparse row (CSR) arrays of dependencies and successors. A run touches
 * only these arrays.
 */
#ifndef DP_DAG_H
#define DP_DAG_H

#include <stdatomic.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"
#include "strarena.h"

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
} dp_job_policy_t;

/* A job: 32 bytes, what differs from job to job. */
typedef struct dp_job_def {
    char *name;
    dp_job_cb run;
    void *user;
    uint32_t pol;   /* index into dp_graph.pols */
    uint32_t flags; /* DP_DEF_* */
} dp_job_def_t;

/* No readiness check and no timeout: the short path in job.c may run it. */
#define DP_DEF_PLAIN 1u

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
    dp_job_policy_t *pols; /* distinct policies, by index */
    size_t npols, pols_cap;
    uint32_t *pol_index;  /* open addressing: slot -> policy index + 1 */
    size_t pol_index_cap; /* power of two, > 2 * npols */
    /* Open-addressing name index: slot -> job index + 1. Needed while jobs
     * are added (duplicates); dropped by a successful validate, after
     * which the jobs are in name order and a binary search finds a name. */
    uint32_t *index;
    dp_strarena_t names; /* where the jobs' names live */
    char **plugins;      /* distinct plugin names; jobs point at them */
    size_t nplugins;
    size_t index_cap; /* power of two, > 2 * njobs */

    /* Dependencies as added, resolved by validate, which then drops them
     * (the CSR arrays below hold the same); a change after that makes them
     * again from the CSR arrays. */
    dp_edge_name_t *edges;
    size_t nedges, edge_cap;
    char **fwd; /* names of dependencies added before their job */
    size_t nfwd, fwd_cap;

    int validated; /* 0 not yet, 1 done */
    int validate_rc;
    char *validate_msg;
    uint32_t *cycle; /* validate_rc DP_ECYCLE: the cycle (dp__graph_cycle) */
    size_t ncycle;

    /* Built by validate. */
    uint32_t *dep_off, *dep_ids;   /* deps of j: dep_ids[dep_off[j] .. dep_off[j+1]) */
    uint32_t *succ_off, *succ_ids; /* successors, same layout */
    size_t nroots;                 /* jobs with no dependency */

    atomic_bool running;

    /* Per-run scratch kept between runs (run.c): a run's dependency
     * counters, ready queue and tickets. Reusing them spares every run
     * fresh pages, whose first-touch faults cost more than the jobs on some
     * machines. Owned by the graph; only the run holding `running` touches
     * it. */
    void *run_scratch;
    size_t run_scratch_size;
    /* Slots of a finished run whose result was freed (record.h): the next run
     * takes them. Results are freed on any thread, hence atomic. */
    _Atomic(struct dp_slotbuf *) spare_slots;
};

static inline const dp_job_policy_t *dp__def_pol(const dp_graph_t *g, const dp_job_def_t *d)
{
    return &g->pols[d->pol];
}

/* Room for njobs jobs and nedges dependencies in all, so that a large graph
 * built in one go grows its arrays once. DP_OK or DP_ENOMEM. */
int dp__graph_reserve(dp_graph_t *g, size_t njobs, size_t nedges);

/* dp_graph_add_dep by index: job depends on dep, both as dp_graph_job_id
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

#endif /* DP_DAG_H */
