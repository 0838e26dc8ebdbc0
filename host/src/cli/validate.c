/*
 * validate.c - `daggerpool validate FILE`: everything `run` checks before it
 * starts (the file, its plugins, every job instance created with its
 * params), and nothing run. Exit 0 or 2.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"

static const char usage[] =
    "usage: daggerpool validate FILE [options]\n"
    "\n"
    "Checks the workflow in FILE as `run` would, loading its plugins and creating every job once to\n"
    "check its params, without running anything. Exit 0 when valid, 2 with every problem otherwise.\n"
    "\n"
    "options:\n"
    "  --plugin-path DIR    search DIR for plugins (repeatable), after the workflow's plugin_path\n"
    "  --allow-insecure-plugins  load plugin files and directories writable by others (unsafe)\n"
    "  -q, --quiet          print nothing when valid\n"
    "  -h, --help           this help\n";

int cli_validate(int argc, char **argv)
{
    enum { OPT_PLUGIN_PATH = 256, OPT_ALLOW_INSECURE };
    static const struct option longopts[] = {
        {"plugin-path", required_argument, NULL, OPT_PLUGIN_PATH},
        {"allow-insecure-plugins", no_argument, NULL, OPT_ALLOW_INSECURE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char **dirs = NULL;
    size_t ndirs = 0;
    bool quiet = false, allow_insecure = false;
    int c, code = CLI_EXIT_INVALID;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_PLUGIN_PATH:
            if (!cli_list_push(&dirs, &ndirs, optarg)) {
                free(dirs);
                return cli_usage_error("validate", "out of memory");
            }
            break;
        case OPT_ALLOW_INSECURE: allow_insecure = true; break;
        case 'q': quiet = true; break;
        case 'h':
            fputs(usage, stdout);
            free(dirs);
            return CLI_EXIT_SUCCESS;
        case ':': free(dirs); return cli_usage_error("validate", "%s needs a value", argv[optind - 1]);
        default: free(dirs); return cli_usage_error("validate", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc || argc - optind > 1) {
        free(dirs);
        return cli_usage_error("validate", optind >= argc ? "no workflow file given" : "one workflow file at a time");
    }
    const char *file = argv[optind];
    if (!cli_check_dirs("validate", dirs, ndirs)) {
        free(dirs);
        return CLI_EXIT_INVALID;
    }

    char *err = calloc(1, 16384);
    console_t *con = console_new(stderr, CLI_LOG_TEXT, DP_LOG_WARN, false);
    dp_plugins_t *pl = dp_plugins_new();
    dp_workflow_t *wf = NULL;
    if (!err || !con || !pl) {
        cli_errorf("validate", "out of memory");
        goto out;
    }
    dp_plugins_set_log(pl, console_log_cb, con, DP_LOG_WARN);
    dp_plugins_allow_insecure(pl, allow_insecure);
    if (!(wf = cli_workflow_build(file, pl, dirs, ndirs, err)))
        goto out;
    const dp_graph_t *g = dp_workflow_graph(wf);
    size_t njobs = dp_graph_job_count(g), ndeps = 0;
    for (size_t i = 0; i < njobs; i++) {
        const uint32_t *ids;
        ndeps += dp_graph_deps(g, i, &ids);
    }
    if (!quiet) {
        /* Escaped: the file and workflow names may hold any bytes. */
        char line[1024];
        snprintf(line, sizeof line, "%s: ok: workflow %s, %zu job%s, %zu dependenc%s", file, dp_workflow_name(wf),
                 njobs, njobs == 1 ? "" : "s", ndeps, ndeps == 1 ? "y" : "ies");
        cli_put_lines(stdout, line);
    }
    code = CLI_EXIT_SUCCESS;
out:
    dp_workflow_free(wf);
    dp_plugins_free(pl);
    console_free(con);
    free(err);
    free(dirs);
    return code;
}
