/* history.c - `daggerpool history FILE`: the runs recorded in the
 * workflow's state (docs/state.md), oldest first, then the manual marks.
 * Reads only: no lock, so it answers while a run or watch is going. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "state.h"

#include <sqlite3.h>

static const char usage[] =
    "usage: daggerpool history FILE [options]\n"
    "\n"
    "Lists the runs recorded in the workflow's state, oldest first: id, start (UTC), duration, outcome,\n"
    "job counts and the command that ran it; then the manual marks (daggerpool mark).\n"
    "\n"
    "options:\n"
    "  --state PATH         the state file (default .daggerpool/BASE-HASH.db here)\n"
    "  -n, --last N         only the last N runs\n"
    "  -h, --help           this help\n"
    "\n"
    "exit codes: 0 listed, 2 invalid input (no state, or not this workflow's)\n";

int cli_history(int argc, char **argv)
{
    enum { OPT_STATE = 256 };
    static const struct option longopts[] = {
        {"state", required_argument, NULL, OPT_STATE},
        {"last", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_state_flags_t f = {0};
    unsigned last = 0;
    opterr = 0;
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":n:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_STATE: f.path = optarg; break;
        case 'n':
            if (!cli_parse_uint(optarg, 1, 1000000000u, &last))
                return cli_usage_error("history", "-n %s: expected a number of runs from 1", optarg);
            break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_SUCCESS;
        case ':': return cli_usage_error("history", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("history", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("history", "no workflow file given");
    if (argc - optind > 1)
        return cli_usage_error("history", "one workflow file, got '%s' and '%s'", argv[optind], argv[optind + 1]);
    const char *file = argv[optind];
    char err[8192];
    dp_workflow_t *wf = dp_workflow_load(file, err, sizeof err);
    if (!wf) {
        cli_put_lines(stderr, err);
        return CLI_EXIT_INVALID;
    }
    cli_state_t *st = NULL;
    int code = cli_state_open_read("history", &f, file, dp_workflow_name(wf), &st);
    if (code == 0) {
        int rc = cli_state_history(st, stdout, last);
        if (rc != SQLITE_OK) {
            cli_errorf("history", "state %s: %s", cli_state_path(st), sqlite3_errstr(rc));
            code = CLI_EXIT_INVALID;
        }
    }
    cli_state_close(st);
    dp_workflow_free(wf);
    return code;
}
