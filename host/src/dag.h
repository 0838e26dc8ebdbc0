/* dag.h - the job graph (private parts).
 *
 * Jobs are added by name in any order; dp_graph_validate() sorts them by
 * name (so ids are name order and every id list is also name-sorted),
 * resolves dependency names once, checks for errors and builds compressed
 * sparse row (CSR) arrays of dependencies and successors plus a topological
 * order. A run touches only these arrays.
 */
#ifndef DP_DAG_H
#define DP_DAG_H

#include <stdatomic.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"
#include "strarena.h"

typedef struct dp_job_def {
    char *name;
    dp_job_cb run;
    dp_job_cb check;
    void *user;
    dp_free_cb user_free;
    uint64_t timeout_ms;
    unsigned retries;
    dp_backoff_t backoff;
    dp_readiness_t readiness;
    char *plugin;
    dp_job_end_cb attempt_end;
} dp_job_def_t;

typedef struct dp_edge_name {
    uint32_t job;    /* index at insertion time (renumbered by validate) */
    uint32_t dep_id; /* the dependency's index, when dep is NULL */
    char *dep;       /* the dependency's name while it names no job yet */
} dp_edge_name_t;

struct dp_graph {
    dp_job_def_t *jobs; /* insertion order until validated, then name order */
    size_t njobs, cap;
    uint32_t *index;    /* open-addressing name index: slot -> job index + 1 */
    dp_strarena_t names; /* where the jobs' names live */
    char **plugins;     /* distinct plugin names; jobs point at them */
    size_t nplugins;
    size_t index_cap;   /* power of two, > 2 * njobs */

    dp_edge_name_t *edges; /* dependencies by name, resolved by validate */
    size_t nedges, edge_cap;

    int validated;      /* 0 not yet, 1 done */
    int validate_rc;
    char *validate_msg;

    /* Built by validate. */
    uint32_t *dep_off, *dep_ids;   /* deps of j: dep_ids[dep_off[j] .. dep_off[j+1]) */
    uint32_t *succ_off, *succ_ids; /* successors, same layout */
    uint32_t *topo;                /* a topological order (dependencies first) */
    uint32_t *roots;               /* jobs with no dependency, by id */
    size_t nroots;

    atomic_bool running;

    /* Per-run scratch kept between runs (pool.c): a run's slots and ready
     * queue. Reusing them spares every run fresh pages, whose first-touch
     * faults cost more than the jobs on some machines. Owned by the graph;
     * only the run holding `running` touches it. */
    void *run_scratch;
    size_t run_scratch_size;
    /* Slots of a finished run whose result was freed (pool.h): the next run
     * takes them. Results are freed on any thread, hence atomic. */
    _Atomic(struct dp_slotbuf *) spare_slots;
};

/* Room for njobs jobs and nedges dependencies in all, so that a large graph
 * built in one go grows its arrays once. DP_OK or DP_ENOMEM. */
int dp__graph_reserve(dp_graph_t *g, size_t njobs, size_t nedges);

/* dp_graph_add_dep by index: job depends on dep, both as dp_graph_job_id
 * would answer now (insertion order until validate). No name lookups; for a
 * loader that resolved the names itself. DP_EINVAL for an index out of
 * range, DP_EBUSY while running, DP_ENOMEM. */
int dp__graph_add_dep_id(dp_graph_t *g, uint32_t job, uint32_t dep);

#endif /* DP_DAG_H */
