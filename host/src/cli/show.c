/* show.c - `daggerpool show FILE [RUN]`: one recorded run (the last by
 * default) as a summary, or with --json its result exactly as `run --json`
 * wrote it (the same bytes). Reads only. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "state.h"

#include <sqlite3.h>

static const char usage[] =
    "usage: daggerpool show FILE [RUN] [options]\n"
    "\n"
    "Shows run RUN (an id from daggerpool history; default: the last run) of the workflow's state: its\n"
    "summary and the jobs it recorded, or with --json its JSON result, byte for byte what run --json wrote.\n"
    "\n"
    "options:\n"
    "  --json               the run's JSON result on stdout\n"
    "  --state PATH         the state file (default .daggerpool/BASE-HASH.db here)\n"
    "  -h, --help           this help\n"
    "\n"
    "exit codes: 0 shown, 2 invalid input (no state, not this workflow's, no such run)\n";

int cli_show(int argc, char **argv)
{
    enum { OPT_STATE = 256, OPT_JSON };
    static const struct option longopts[] = {
        {"state", required_argument, NULL, OPT_STATE},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_state_flags_t f = {0};
    bool json = false;
    opterr = 0;
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_STATE: f.path = optarg; break;
        case OPT_JSON: json = true; break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_SUCCESS;
        case ':': return cli_usage_error("show", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("show", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("show", "no workflow file given");
    if (argc - optind > 2)
        return cli_usage_error("show", "expected FILE [RUN], got %d arguments", argc - optind);
    const char *file = argv[optind];
    long long run = 0;
    if (argc - optind == 2) {
        char *end;
        errno = 0;
        run = strtoll(argv[optind + 1], &end, 10);
        if (errno || *end || run < 1)
            return cli_usage_error("show", "RUN %s: expected a run id (a number from daggerpool history)",
                                   argv[optind + 1]);
    }
    char err[8192];
    dp_workflow_t *wf = dp_workflow_load(file, err, sizeof err);
    if (!wf) {
        cli_put_lines(stderr, err);
        return CLI_EXIT_INVALID;
    }
    cli_state_t *st = NULL;
    int code = cli_state_open_read("show", &f, file, dp_workflow_name(wf), &st);
    if (code == 0) {
        int rc = cli_state_show(st, stdout, run, json);
        if (rc == SQLITE_NOTFOUND) {
            if (run)
                cli_errorf("show", "state %s has no run %lld%s; fix: pick one that daggerpool history %s lists",
                           cli_state_path(st), run, json ? " with a JSON result" : "", file);
            else
                cli_errorf("show", "state %s has no run yet; fix: run the workflow first", cli_state_path(st));
            code = CLI_EXIT_INVALID;
        } else if (rc != SQLITE_OK) {
            cli_errorf("show", "state %s: %s", cli_state_path(st), sqlite3_errstr(rc));
            code = CLI_EXIT_INVALID;
        }
    }
    cli_state_close(st);
    dp_workflow_free(wf);
    return code;
}
