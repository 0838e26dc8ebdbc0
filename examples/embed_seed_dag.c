/* embed_seed_dag.c - a controller's view of libdaggerpool: the seed README's
 * workflow A -> (B, C) -> D -> E built from C callbacks, run on a pool of 2
 * workers, and its result read back. No plugin and no file involved.
 *
 *   ./embed_seed_dag            all jobs ready
 *   ./embed_seed_dag not-ready  C reports "not ready": D and E are skipped
 *   ./embed_seed_dag fail       C fails: the run is cancelled (fail fast)
 */
#include <daggerpool/daggerpool.h>
#include <stdio.h>
#include <string.h>

static const char *mode = "ready";

static dp_outcome_t step(dp_job_t *job, void *user)
{
    (void)user;
    /* Respect cancellation: a cancellable 50 ms of "work". */
    if (dp_ctx_sleep(dp_job_ctx(job), 50) != 0)
        return dp_job_fail(job, false, "cancelled while working");
    if (strcmp(dp_job_name(job), "JobC") == 0) {
        if (strcmp(mode, "not-ready") == 0)
            return DP_NOT_READY;
        if (strcmp(mode, "fail") == 0)
            return dp_job_fail(job, true, "JobC: the resource is broken");
    }
    return DP_READY;
}

static void print_log(void *user, const dp_log_record_t *rec)
{
    (void)user;
    fprintf(stderr, "%-5s %-5s %s\n", dp_log_level_name(rec->level), rec->job ? rec->job : "-", rec->message);
}

static void print_ids(const dp_graph_t *g, const dp_id_list_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        printf("%s%s", i ? ", " : "", dp_graph_job_name(g, l->ids[i]));
}

int main(int argc, char **argv)
{
    if (argc > 1)
        mode = argv[1];
    static const char *deps[][3] = {
        {"JobA", NULL},           {"JobB", "JobA", NULL}, {"JobC", "JobA", NULL},
        {"JobD", "JobB", "JobC"}, {"JobE", "JobD", NULL},
    };
    char err[256];
    dp_graph_t *g = dp_graph_new();
    for (size_t i = 0; i < sizeof deps / sizeof deps[0]; i++) {
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        spec.name = deps[i][0];
        spec.run = step;
        if (dp_graph_add_job(g, &spec, err, sizeof err) != DP_OK) {
            fprintf(stderr, "add job: %s\n", err);
            return 2;
        }
        for (int k = 1; k < 3 && deps[i][k]; k++)
            dp_graph_add_dep(g, deps[i][0], deps[i][k]);
    }

    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.max_concurrent_jobs = 2;
    opts.timeout_ms = 10000;
    opts.log = print_log;
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof err);
    if (!r) {
        fprintf(stderr, "run: %s\n", err);
        dp_graph_free(g);
        return 2;
    }

    printf("outcome: %s\n", dp_run_outcome_name(dp_result_outcome(r)));
    for (size_t j = 0; j < dp_result_job_count(r); j++) {
        const dp_job_result_t *jr = dp_result_job(r, j);
        printf("  %-5s %-9s attempts=%u%s%s\n", jr->name, dp_status_name(jr->status), jr->attempts,
               jr->error ? " error=" : "", jr->error ? jr->error : "");
    }
    if (!dp_result_is_ready(r)) {
        const dp_frontier_t *f;
        size_t nf = dp_result_frontiers(r, &f);
        for (size_t i = 0; i < nf; i++) {
            printf("frontier: %s (%s), subtree: ", dp_graph_job_name(g, f[i].job), dp_status_name(f[i].status));
            print_ids(g, &f[i].subtree);
            printf("\n");
        }
        printf("boundary: ");
        print_ids(g, dp_result_boundary(r));
        printf("\n");
        if (dp_result_first_error(r))
            printf("first error: %s\n", dp_result_first_error(r));
    }
    int code = (int)dp_result_outcome(r);
    dp_result_free(r);
    dp_graph_free(g);
    return code;
}
