/*
 * graph.c - `daggerpool graph FILE`: the workflow's DAG as Graphviz DOT or
 * Mermaid, optionally coloured by the statuses of a JSON result. Draws the
 * file's shape only: no plugin is loaded, so a graph can be drawn on a
 * machine that could not run it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    "                         (of another workflow: refused; of an older version: jobs that differ are named)\n"
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
    char *err = calloc(1, 16384), *warn = calloc(1, 4096);
    const char **types = NULL;
    int *status = NULL;
    dp_workflow_t *wf = NULL;
    FILE *in = NULL;
    if (!err || !warn)
        goto oom;
    /* The result file is checked before the workflow is read: only a
     * regular file (a FIFO would block the read forever). */
    if (result) {
        int fd = cli_open_regular("graph", "--result", result, O_RDONLY,
                                  "name the JSON result written by `daggerpool run FILE --json JSON`");
        if (fd < 0)
            goto out;
        if (!(in = fdopen(fd, "r"))) {
            close(fd);
            goto oom;
        }
    }
    cli_heap_for_workflow(file);
    if (!(wf = dp_workflow_load(file, err, 16384))) {
        cli_put_lines(stderr, err);
        goto out;
    }
    cli_heap_loaded();
    const dp_graph_t *g = dp__workflow_shape(wf);
    size_t n = dp_graph_job_count(g);
    if (!(types = calloc(n ? n : 1, sizeof *types)) || !(status = calloc(n ? n : 1, sizeof *status)))
        goto oom;
    for (size_t i = 0; i < n; i++)
        types[i] = dp__workflow_job_type(wf, dp_graph_job_name(g, i));
    dp__graph_style_t style = {types, NULL};
    if (in) {
        /* A result of another workflow is refused (exit 2); one of an
         * older version of this one colours what still matches and says
         * which jobs do not (a warning: the graph is still drawn). */
        if (dp__render_statuses_read(in, result, g, dp_workflow_name(wf), status, warn, 4096, err, 16384) != DP_OK) {
            cli_errorf("graph", "%s", err);
            goto out;
        }
        if (*warn)
            cli_errorf("graph", "warning: %s", warn);
        style.status = status;
    }
    int rc = strcmp(format, "dot") == 0 ? dp__render_dot(stdout, g, dp_workflow_name(wf), &style)
                                        : dp__render_mermaid(stdout, g, &style);
    if (rc != DP_OK) {
        cli_errorf("graph", "cannot write the graph: %s", rc == DP_ESYS ? strerror(errno) : dp_strerror(rc));
        code = CLI_EXIT_FAILED;
        goto out;
    }
    code = CLI_EXIT_SUCCESS;
    goto out;
oom:
    cli_errorf("graph", "out of memory");
out:
    if (in)
        fclose(in);
    free(types);
    free(status);
    dp_workflow_free(wf);
    free(err);
    free(warn);
    return code;
}
