/*
 * plan.c - `daggerpool plan FILE [JOB...]`: what `run` would do, run
 * nothing; and what `run` and `run --dry-run` share with it: the targets
 * read from the command line and the plan made of them (cli_plan_make).
 *
 * A plan checks the file as validate does (its plugins loaded, every job
 * created once to check its params) and calls nothing else of any plugin:
 * no job runs, no readiness probe, no store. The reused set comes from the
 * state code (cli_selection_t.notes); without it nothing is reused.
 */
#include <getopt.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>

#include "cli.h"
#include "state.h"
#include "config.h"
#include "util.h"

static const char usage[] =
    "usage: daggerpool plan FILE [JOB...] [options]\n"
    "\n"
    "Says what `daggerpool run FILE [JOB...]` would do, without running anything: the jobs that would\n"
    "run in waves (a wave's jobs depend only on jobs of earlier waves), the jobs that would be reused\n"
    "and those left out (not needed by the targets). With JOBs, only they and what they depend on\n"
    "would run. The file is checked as `validate` checks it (plugins loaded, params checked); no job\n"
    "and no other plugin code runs. Exit 0 with the plan, 2 on invalid input.\n"
    "\n"
    "options:\n"
    "  --json               the plan as JSON on stdout (keys: man daggerpool)\n"
    "  --plugin-path DIR    search DIR for plugins (repeatable), after the workflow's plugin_path\n"
    "  --allow-insecure-plugins  load plugin files and directories writable by others (unsafe)\n"
    "  --resume             as run --resume would: the jobs the workflow's state lets it reuse (read only)\n"
    "  --state PATH         the state file (default .daggerpool/BASE-HASH.db here)\n"
    "  -h, --help           this help\n";

/* A target that names no job: the file, the name, the nearest name. */
static void unknown_target(const char *cmd, const char *file, const dp_graph_t *g, const char *name)
{
    size_t n = dp_graph_job_count(g);
    const char **names = malloc((n + 1) * sizeof *names);
    const char *near = NULL;
    if (names) {
        for (size_t i = 0; i < n; i++)
            names[i] = dp_graph_job_name(g, i);
        names[n] = NULL;
        near = dp__nearest_word(name, names);
    }
    if (near)
        cli_errorf(cmd, "%s: no job '%s' to run as a target; did you mean '%s'?", file, name, near);
    else
        cli_errorf(cmd, "%s: no job '%s' to run as a target; name jobs of the file ('daggerpool plan %s' lists them)",
                   file, name, file);
    free(names);
}

bool cli_plan_make(const char *cmd, const dp_workflow_t *wf, const cli_selection_t *sel, dp_plan_t *plan)
{
    const dp_graph_t *g = dp__workflow_full_graph(wf);
    const char *file = dp__workflow_path(wf);
    size_t n = dp_graph_job_count(g);
    uint32_t *targets = malloc((sel->ntargets ? sel->ntargets : 1) * sizeof *targets);
    uint32_t *reused = malloc((sel->nnotes ? sel->nnotes : 1) * sizeof *reused);
    const char **reasons = sel->nnotes ? calloc(n ? n : 1, sizeof *reasons) : NULL;
    char err[1024];
    bool ok = targets && reused && (reasons || !sel->nnotes);
    size_t nreused = 0;
    if (!ok)
        cli_errorf(cmd, "out of memory");
    /* Every unknown target at once, as the file's problems are listed. */
    for (size_t i = 0; targets && i < sel->ntargets; i++) {
        const char *t = sel->targets[i];
        long id = t[0] ? dp_graph_job_id(g, t) : -1;
        if (!t[0])
            cli_errorf(cmd, "%s: an empty job name given as a target; name a job of the file", file);
        else if (id < 0)
            unknown_target(cmd, file, g, t);
        ok = ok && id >= 0;
        targets[i] = id < 0 ? 0 : (uint32_t)id;
    }
    /* The state code's word on each job it knows; a job it knows that the
     * file no longer has is no business of the plan's. */
    for (size_t i = 0; ok && i < sel->nnotes; i++) {
        long id = sel->notes[i].job ? dp_graph_job_id(g, sel->notes[i].job) : -1;
        if (id < 0)
            continue;
        if (sel->notes[i].reuse)
            reused[nreused++] = (uint32_t)id;
        reasons[id] = sel->notes[i].reason;
    }
    if (ok && dp__plan_make(plan, g, targets, sel->ntargets, reused, nreused, reasons, err, sizeof err) != DP_OK) {
        cli_errorf(cmd, "%s: %s", file, err);
        ok = false;
    }
    free(targets);
    free(reused);
    free(reasons); /* the plan keeps the strings, which the notes own */
    return ok;
}

int cli_plan(int argc, char **argv)
{
    enum { OPT_JSON = 256, OPT_PLUGIN_PATH, OPT_ALLOW_INSECURE };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"plugin-path", required_argument, NULL, OPT_PLUGIN_PATH},
        {"allow-insecure-plugins", no_argument, NULL, OPT_ALLOW_INSECURE},
        {"resume", no_argument, NULL, CLI_STATE_OPT_RESUME},
        {"state", required_argument, NULL, CLI_STATE_OPT_STATE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_state_flags_t sf = {0};
    char **dirs = NULL;
    size_t ndirs = 0;
    bool json = false, allow_insecure = false;
    int c, code = CLI_EXIT_INVALID;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: json = true; break;
        case OPT_PLUGIN_PATH:
            if (!cli_list_push(&dirs, &ndirs, optarg)) {
                free(dirs);
                return cli_usage_error("plan", "out of memory");
            }
            break;
        case OPT_ALLOW_INSECURE: allow_insecure = true; break;
        case CLI_STATE_OPT_RESUME:
        case CLI_STATE_OPT_STATE: {
            int rc = cli_state_flag("plan", c, optarg, &sf);
            if (rc >= 0) {
                free(dirs);
                return rc;
            }
            break;
        }
        case 'h':
            fputs(usage, stdout);
            free(dirs);
            return CLI_EXIT_SUCCESS;
        case ':': free(dirs); return cli_usage_error("plan", "%s needs a value", argv[optind - 1]);
        default: free(dirs); return cli_usage_error("plan", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        free(dirs);
        return cli_usage_error("plan", "no workflow file given");
    }
    const char *file = argv[optind];
    cli_selection_t sel = {.targets = argv + optind + 1, .ntargets = (size_t)(argc - optind - 1)};
    if (!cli_check_dirs("plan", dirs, ndirs)) {
        free(dirs);
        return CLI_EXIT_INVALID;
    }

    char *err = calloc(1, 16384);
    console_t *con = console_new(stderr, CLI_LOG_TEXT, DP_LOG_WARN, false);
    dp_plugins_t *pl = dp_plugins_new();
    dp_workflow_t *wf = NULL;
    dp_plan_t plan;
    memset(&plan, 0, sizeof plan);
    cli_state_t *state = NULL;
    cli_job_note_t *notes = NULL;
    if (!err || !con || !pl) {
        cli_errorf("plan", "out of memory");
        goto out;
    }
    dp_plugins_set_log(pl, console_log_cb, con, DP_LOG_WARN);
    dp_plugins_allow_insecure(pl, allow_insecure);
    if (!(wf = cli_workflow_build(file, pl, dirs, ndirs, err)))
        goto out;
    /* --resume: the state read (no lock: a plan writes nothing); none
     * there yet: nothing reused, as run --resume would. */
    if (sf.resume) {
        char *def = sf.path ? NULL : cli_state_default_path(file);
        const char *sp = sf.path ? sf.path : def;
        struct stat sb;
        bool there = sp && stat(sp, &sb) == 0;
        free(def);
        if (there && cli_state_open_read("plan", &sf, file, dp_workflow_name(wf), &state) != 0)
            goto out;
        if (!cli_state_resume_notes(state, wf, con, &notes, &sel.nnotes)) {
            cli_errorf("plan", "out of memory");
            goto out;
        }
        sel.notes = notes;
    }
    if (!cli_plan_make("plan", wf, &sel, &plan))
        goto out;
    int rc = json ? dp__plan_render_json(stdout, &plan, dp_workflow_name(wf))
                  : dp__plan_render_text(stdout, &plan, dp_workflow_name(wf));
    if (rc == DP_ENOMEM) {
        cli_errorf("plan", "out of memory");
        goto out;
    }
    code = CLI_EXIT_SUCCESS; /* a failed write to stdout: main says so (exit 1) */
out:
    dp__plan_free(&plan);
    cli_state_close(state);
    free(notes);
    dp_workflow_free(wf);
    dp_plugins_free(pl);
    console_free(con);
    free(err);
    free(dirs);
    return code;
}
