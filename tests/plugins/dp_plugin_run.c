/*
 * dp_plugin_run.c - loads one plugin file and runs one of its job types, as
 * a host would: `dp_plugin_run NAME PATH TYPE [KEY=VALUE...]`. Prints the log
 * and the job's status; exits 0 only if the job succeeded. Used by the SDK
 * install test to run plugins built out of tree.
 */
#include <stdio.h>
#include <string.h>

#include "daggerpool/daggerpool.h"

static void print_log(void *user, const dp_log_record_t *rec)
{
    (void)user;
    printf("%s %s: %s\n", dp_log_level_name(rec->level), rec->job ? rec->job : "-", rec->message);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s NAME PATH TYPE [KEY=VALUE...]\n", argv[0]);
        return 2;
    }
    char err[4096];
    dp_plugins_t *pl = dp_plugins_new();
    dp_plugins_set_log(pl, print_log, NULL, DP_LOG_DEBUG);
    if (dp_plugins_load(pl, argv[1], argv[2], err, sizeof(err)) != DP_OK) {
        fprintf(stderr, "%s\n", err);
        dp_plugins_free(pl);
        return 1;
    }
    dp_params_t *p = dp_params_new();
    for (int i = 4; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "param '%s' is not KEY=VALUE\n", argv[i]);
            return 2;
        }
        *eq = '\0';
        dp_params_set_string(p, argv[i], eq + 1);
    }
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "job";
    int rc = 1;
    if (dp_plugins_add_job(pl, g, &spec, argv[3], p, err, sizeof(err)) != DP_OK) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.log = print_log;
    opts.log_level = DP_LOG_DEBUG;
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof(err));
    if (!r) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    const dp_job_result_t *j = dp_result_find(r, "job");
    printf("status %s, plugin %s %s\n", dp_status_name(j->status), j->plugin, j->plugin_version);
    rc = j->status == DP_STATUS_SUCCESS ? 0 : 1;
    dp_result_free(r);
out:
    dp_graph_free(g);
    dp_params_free(p);
    dp_plugins_free(pl);
    return rc;
}
