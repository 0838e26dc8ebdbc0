/* mark.c - `daggerpool mark FILE JOB --success|--clear`: a manual override
 * recorded in the workflow's state with who and when (shown by history):
 * --success makes the next --resume reuse JOB as it is defined now (a
 * later change of its definition undoes the mark); --clear makes it run
 * again. Takes the state's lock like a run. */
#include <getopt.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "state.h"

#include <sqlite3.h>

static const char usage[] =
    "usage: daggerpool mark FILE JOB --success | --clear [options]\n"
    "\n"
    "Records a manual override of JOB in the workflow's state, with your user name and the time\n"
    "(daggerpool history lists them). --success: the next run --resume reuses JOB (as it is defined now)\n"
    "instead of running it; --clear: the next run --resume runs it.\n"
    "\n"
    "options:\n"
    "  --success            mark JOB as succeeded\n"
    "  --clear              forget JOB's success\n"
    "  --state PATH         the state file (default .daggerpool/BASE-HASH.db here)\n"
    "  --wait               wait for a run or watch that holds the state instead of refusing\n"
    "  -h, --help           this help\n"
    "\n"
    "exit codes: 0 recorded, 1 the state could not be written, 2 invalid input (no such job, the state\n"
    "in use or not this workflow's)\n";

/* The user's name: the login's, else $USER, else the uid. */
static void user_name(char *buf, size_t len)
{
    struct passwd pw, *res = NULL;
    char tmp[4096];
    if (getpwuid_r(getuid(), &pw, tmp, sizeof tmp, &res) == 0 && res && res->pw_name) {
        snprintf(buf, len, "%s", res->pw_name);
        return;
    }
    const char *u = getenv("USER");
    if (u && *u)
        snprintf(buf, len, "%s", u);
    else
        snprintf(buf, len, "uid %ld", (long)getuid());
}

int cli_mark(int argc, char **argv)
{
    enum { OPT_STATE = 256, OPT_SUCCESS, OPT_CLEAR, OPT_WAIT };
    static const struct option longopts[] = {
        {"success", no_argument, NULL, OPT_SUCCESS},
        {"clear", no_argument, NULL, OPT_CLEAR},
        {"state", required_argument, NULL, OPT_STATE},
        {"wait", no_argument, NULL, OPT_WAIT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_state_flags_t f = {0};
    int action = 0; /* 1 success, 2 clear */
    opterr = 0;
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_STATE: f.path = optarg; break;
        case OPT_WAIT: f.wait = true; break;
        case OPT_SUCCESS:
        case OPT_CLEAR:
            if (action && action != (c == OPT_SUCCESS ? 1 : 2))
                return cli_usage_error("mark", "--success and --clear: give one of them");
            action = c == OPT_SUCCESS ? 1 : 2;
            break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_SUCCESS;
        case ':': return cli_usage_error("mark", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("mark", "unknown option %s", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("mark", "expected FILE JOB");
    if (!action)
        return cli_usage_error("mark", "say what to record: --success or --clear");
    const char *file = argv[optind], *job = argv[optind + 1];
    char err[8192];
    dp_workflow_t *wf = dp_workflow_load(file, err, sizeof err);
    if (!wf) {
        cli_put_lines(stderr, err);
        return CLI_EXIT_INVALID;
    }
    int code = CLI_EXIT_INVALID;
    cli_state_t *st = NULL;
    const dp_graph_t *shape = dp__workflow_shape(wf);
    long id = shape ? dp_graph_job_id(shape, job) : -1;
    if (!shape) {
        cli_errorf("mark", "out of memory");
        goto out;
    }
    if (id < 0) {
        cli_errorf("mark", "%s has no job '%s'; fix: name one of its jobs (daggerpool graph %s lists them)", file, job,
                   file);
        goto out;
    }
    code = cli_state_open("mark", &f, file, dp_workflow_name(wf), NULL, &st);
    if (code != 0)
        goto out;
    if (!st) { /* cannot be written: warned */
        code = CLI_EXIT_FAILED;
        goto out;
    }
    char who[256];
    uint64_t hash = cli_state_def_hash(cli_state_def_hash_version(st), wf, shape, (size_t)id);
    user_name(who, sizeof who);
    int rc = cli_state_mark(st, job, action == 1, hash, who);
    if (rc != SQLITE_OK) {
        cli_errorf("mark", "state %s: cannot record the mark: %s", cli_state_path(st), sqlite3_errstr(rc));
        code = CLI_EXIT_FAILED;
        goto out;
    }
    printf("%s: %s %s (by %s), in %s\n", file, job,
           action == 1 ? "marked success: the next run --resume reuses it" : "cleared: the next run --resume runs it",
           who, cli_state_path(st));
    code = CLI_EXIT_SUCCESS;
out:
    cli_state_close(st);
    dp_workflow_free(wf);
    return code;
}
