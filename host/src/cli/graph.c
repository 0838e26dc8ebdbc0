/*
 * graph.c - `daggerpool graph FILE`: the workflow's DAG as Graphviz DOT or
 * Mermaid, optionally coloured by the statuses of a JSON result. Draws the
 * file's shape only: no plugin is loaded, so a graph can be drawn on a
 * machine that could not run it.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"

static const char usage[] =
    "usage: daggerpool graph FILE [options]\n"
    "\n"
    "Prints the workflow's DAG to stdout (edges point from a job to the jobs that depend on it).\n"
    "\n"
    "options:\n"
    "  --format dot|mermaid   Graphviz DOT (default; render with `dot -Tpng`) or a Mermaid flowchart\n"
    "  --result JSON          colour each job by its status in JSON, a result of `daggerpool run --json`\n"
    "  -h, --help             this help\n";

int cli_graph(int argc, char **argv)
{
    enum { OPT_FORMAT = 256, OPT_RESULT };
    static const struct option longopts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        {"result", required_argument, NULL, OPT_RESULT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *format = "dot", *result = NULL;
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT:
            if (strcmp(optarg, "dot") != 0 && strcmp(optarg, "mermaid") != 0)
                return cli_usage_error("graph", "--format %s: expected dot or mermaid", optarg);
            format = optarg;
            break;
        case OPT_RESULT: result = optarg; break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_SUCCESS;
        case ':': return cli_usage_error("graph", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("graph", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc || argc - optind > 1)
        return cli_usage_error("graph", optind >= argc ? "no workflow file given" : "one workflow file at a time");
    const char *file = argv[optind];

    int code = CLI_EXIT_INVALID;
    char *err = calloc(1, 16384);
    const char **types = NULL;
    int *status = NULL;
    dp_workflow_t *wf = NULL;
    if (!err)
        goto oom;
    cli_heap_for_workflow(file);
    if (!(wf = dp_workflow_load(file, err, 16384))) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    cli_heap_loaded();
    const dp_graph_t *g = dp__workflow_shape(wf);
    size_t n = dp_graph_job_count(g);
    if (!(types = calloc(n ? n : 1, sizeof *types)) || !(status = calloc(n ? n : 1, sizeof *status)))
        goto oom;
    for (size_t i = 0; i < n; i++)
        types[i] = dp__workflow_job_type(wf, dp_graph_job_name(g, i));
    dp_graph_style_t style = {types, NULL};
    if (result) {
        if (dp_render_statuses_from_json(result, g, status, err, 16384) != DP_OK) {
            fprintf(stderr, "daggerpool graph: %s\n", err);
            goto out;
        }
        style.status = status;
    }
    int rc = strcmp(format, "dot") == 0 ? dp_render_dot(stdout, g, dp_workflow_name(wf), &style)
                                        : dp_render_mermaid(stdout, g, &style);
    if (rc != DP_OK) {
        fprintf(stderr, "daggerpool graph: cannot write the graph: %s\n", dp_strerror(rc));
        code = CLI_EXIT_FAILED;
        goto out;
    }
    code = CLI_EXIT_SUCCESS;
    goto out;
oom:
    fprintf(stderr, "daggerpool graph: out of memory\n");
out:
    free(types);
    free(status);
    dp_workflow_free(wf);
    free(err);
    return code;
}
