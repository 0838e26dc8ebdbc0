/*
 * run.c - `daggerpool run FILE [JOB...]`: load, check, run once, report.
 * With JOBs (targets), only they and what they depend on run: the whole
 * file is checked first, then a graph of the selected jobs is made and
 * run, so the result holds only them. --dry-run says what would run (the
 * plan, plan.c) and runs nothing.
 *
 * Everything that can be refused is refused before the run starts (exit 2):
 * the file, its plugins and params, the flags, and the output paths (the
 * JSON and trace files are created up front and renamed into place at the
 * end, so a reader never sees half a file). After the run, the summary and
 * the JSON are written whatever the outcome, also after SIGINT/SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "state.h"
#include "text.h"

static const char usage[] =
    "usage: daggerpool run FILE [JOB...] [options]\n"
    "\n"
    "Runs the workflow in FILE once and prints a summary. With JOBs, only they and the jobs they\n"
    "depend on (transitively) run, and the result holds only those.\n"
    "\n"
    "options:\n"
    "  --json PATH|-        write the JSON result to PATH (- : stdout; the summary then goes to stderr);\n"
    "                       PATH is a regular file or a new one (written whole, renamed into place)\n"
    "  --trace PATH         write a Chrome trace (one span per job attempt; open it in Perfetto)\n"
    "  -j, --jobs N         run at most N jobs at once (overrides workflow.max_concurrent_jobs)\n"
    "  --timeout DUR        whole-run timeout such as 30s or 5m; 0 for none (overrides workflow.timeout)\n"
    "  --keep-going         on a failure, skip only its successors (overrides workflow.fail_fast)\n"
    "  --dry-run            run nothing: print what would run, in waves, as `daggerpool plan` does\n"
    "                       (with --json, the plan's JSON)\n"
    "  --plugin-path DIR    search DIR for plugins (repeatable), after the workflow's plugin_path\n"
    "  --allow-insecure-plugins  load plugin files and directories writable by others (unsafe)\n"
    "  -q, --quiet          no progress, only errors in the log\n"
    "  -v, --verbose        more log: -v info, -vv debug (default: warnings and errors)\n"
    "  --log-format FMT     text (default) or json (one JSON object per line: logs, progress, errors)\n"
    "  --resume             reuse the jobs whose last recorded run succeeded and whose definition is\n"
    "                       unchanged (they and all their dependencies); the rest runs\n" CLI_STATE_HELP
    "  -h, --help           this help\n"
    "\n"
    "exit codes: 0 success, 1 failed (or an output could not be written), 2 invalid input (nothing ran),\n"
    "3 not ready, 4 timeout, 130 interrupted\n";

typedef struct run_opts_cli {
    const char *file;
    const char *json;
    const char *trace;
    cli_run_flags_t flags;
    bool allow_insecure;
    char **plugin_dirs;
    size_t nplugin_dirs;
    int verbose;
    bool quiet;
    cli_log_format_t log_format;
    bool dry_run;        /* --dry-run */
    cli_selection_t sel; /* targets (argv after FILE); notes: the state code's */
    cli_state_flags_t state;
} run_cli_t;

typedef struct sinks {
    console_t *con;
    trace_rec_t *trace;
    cli_state_t *state;
} sinks_t;

static void on_event(void *user, const dp_event_t *ev)
{
    sinks_t *s = user;
    console_event(s->con, ev);
    if (s->trace)
        trace_rec_event(s->trace, ev);
    if (s->state)
        cli_state_event(s->state, ev);
}

/* Returns -1 when parsing succeeded, else the exit code. */
static int parse_args(int argc, char **argv, run_cli_t *o)
{
    enum {
        OPT_JSON = 256,
        OPT_TRACE,
        OPT_TIMEOUT,
        OPT_KEEP_GOING,
        OPT_PLUGIN_PATH,
        OPT_LOG_FORMAT,
        OPT_ALLOW_INSECURE,
        OPT_DRY_RUN
    };
    static const struct option longopts[] = {
        {"json", required_argument, NULL, OPT_JSON},
        {"trace", required_argument, NULL, OPT_TRACE},
        {"jobs", required_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"keep-going", no_argument, NULL, OPT_KEEP_GOING},
        {"plugin-path", required_argument, NULL, OPT_PLUGIN_PATH},
        {"allow-insecure-plugins", no_argument, NULL, OPT_ALLOW_INSECURE},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"state", required_argument, NULL, CLI_STATE_OPT_STATE},
        {"no-state", no_argument, NULL, CLI_STATE_OPT_NO_STATE},
        {"wait", no_argument, NULL, CLI_STATE_OPT_WAIT},
        {"keep-runs", required_argument, NULL, CLI_STATE_OPT_KEEP_RUNS},
        {"resume", no_argument, NULL, CLI_STATE_OPT_RESUME},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 0; /* glibc: start afresh */
    int c;
    char err[256];
    while ((c = getopt_long(argc, argv, ":j:qvh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: o->json = optarg; break;
        case OPT_TRACE: o->trace = optarg; break;
        case 'j':
            if (!cli_parse_uint(optarg, 1, 100000, &o->flags.jobs))
                return cli_usage_error("run", "-j %s: expected a number of jobs from 1 to 100000", optarg);
            break;
        case OPT_TIMEOUT:
            if (dp_duration_parse(optarg, &o->flags.timeout_ms, err, sizeof err) != DP_OK)
                return cli_usage_error("run", "--timeout: %s", err);
            o->flags.timeout_set = true;
            break;
        case OPT_KEEP_GOING: o->flags.keep_going = true; break;
        case OPT_ALLOW_INSECURE: o->allow_insecure = true; break;
        case OPT_DRY_RUN: o->dry_run = true; break;
        case OPT_PLUGIN_PATH:
            if (!cli_list_push(&o->plugin_dirs, &o->nplugin_dirs, optarg))
                return cli_usage_error("run", "out of memory");
            break;
        case 'q': o->quiet = true; break;
        case 'v': o->verbose++; break;
        case OPT_LOG_FORMAT:
            if (!cli_parse_log_format(optarg, &o->log_format))
                return cli_usage_error("run", "--log-format %s: expected text or json", optarg);
            break;
        case CLI_STATE_OPT_STATE:
        case CLI_STATE_OPT_NO_STATE:
        case CLI_STATE_OPT_WAIT:
        case CLI_STATE_OPT_KEEP_RUNS:
        case CLI_STATE_OPT_RESUME: {
            int code = cli_state_flag("run", c, optarg, &o->state);
            if (code >= 0)
                return code;
            break;
        }
        case 'h': fputs(usage, stdout); return CLI_EXIT_SUCCESS;
        case ':': return cli_usage_error("run", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("run", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("run", "no workflow file given");
    o->file = argv[optind];
    /* The rest are targets (getopt put the options before them). */
    o->sel.targets = argv + optind + 1;
    o->sel.ntargets = (size_t)(argc - optind - 1);
    if (o->dry_run && o->trace)
        return cli_usage_error("run", "--trace has nothing to trace with --dry-run (nothing runs)");
    if (o->trace && strcmp(o->trace, "-") == 0 && o->json && strcmp(o->json, "-") == 0)
        return cli_usage_error("run", "--json - and --trace - would both write to stdout");
    return -1;
}

/* The output files, before anything runs: each a name that may be replaced
 * (out_file_check), no two of them one file (by device and inode, or by
 * resolved name for those not there yet: ./r.json and r.json are one), and
 * none of them the workflow file. */
static bool check_outputs(const run_cli_t *o, out_file_t *json, out_file_t *trace)
{
    if (o->json && !out_file_check(json, "run", "--json", "JSON result", o->json))
        return false;
    if (o->trace && !out_file_check(trace, "run", "--trace", "trace", o->trace))
        return false;
    if (json->target && trace->target && cli_same_file(&json->id, &trace->id)) {
        cli_usage_error("run", "--json %s and --trace %s name the same file; give each its own", o->json, o->trace);
        return false;
    }
    cli_file_id_t wf;
    cli_file_id(o->file, &wf);
    const out_file_t *outs[] = {json, trace};
    for (size_t i = 0; i < 2; i++)
        if (outs[i]->target && cli_same_file(&outs[i]->id, &wf)) {
            cli_usage_error("run", "%s %s names the workflow file %s, which it would replace; write the %s elsewhere",
                            outs[i]->flag, outs[i]->path, o->file, outs[i]->what);
            cli_file_id_free(&wf);
            return false;
        }
    cli_file_id_free(&wf);
    return true;
}

/* Commits an output its renderer wrote (rc), or says why it is not there. */
static bool finish_output(out_file_t *f, int rc)
{
    if (rc == DP_OK)
        return out_file_commit(f, "run");
    int e = errno;
    cli_errorf("run", "cannot write the %s to %s: %s", f->what, f->target ? f->path : "standard output",
               rc == DP_ENOMEM ? "out of memory" : strerror(e));
    out_file_discard(f);
    return false;
}

/* The summary, the JSON and the trace of r; the exit code. An output that
 * cannot be written makes a successful run exit 1 (a run that did not
 * succeed keeps its own code): a script must not take a result nobody could
 * read for a success. */
static int write_outputs(const run_cli_t *o, const dp_result_t *r, const char *name, FILE *summary_out,
                         out_file_t *json_file, out_file_t *trace_file, trace_rec_t *trace, const char *json_text,
                         size_t json_len)
{
    int code = (int)dp_result_outcome(r);
    if (summary_out && dp__render_summary(summary_out, r, name) != DP_OK) {
        cli_errorf("run", "cannot write the summary to %s: %s",
                   summary_out == stdout ? "standard output" : "standard error", strerror(errno));
        if (code == CLI_EXIT_SUCCESS)
            code = CLI_EXIT_FAILED;
    }
    /* With state on, the JSON was made in memory once for both (the state
     * keeps the very bytes, for `show --json`). */
    int jrc = !o->json    ? DP_OK
              : json_text ? (fwrite(json_text, 1, json_len, json_file->f) == json_len ? DP_OK : DP_ESYS)
                          : dp__render_json(json_file->f, r, name);
    if (o->json && !finish_output(json_file, jrc) && code == CLI_EXIT_SUCCESS)
        code = CLI_EXIT_FAILED;
    if (o->trace)
        trace_rec_pool_waits(trace, r);
    if (o->trace && !finish_output(trace_file, trace_rec_finish(trace)) && code == CLI_EXIT_SUCCESS)
        code = CLI_EXIT_FAILED;
    return code;
}

/* The JSON result in memory, exactly what --json writes: kept in the state
 * (show --json gives these bytes back) and written to --json from here. */
static bool render_json_text(const dp_result_t *r, const char *name, char **text, size_t *len)
{
    FILE *f = open_memstream(text, len);
    if (!f)
        return false;
    int rc = dp__render_json(f, r, name);
    if (fclose(f) != 0 || rc != DP_OK) {
        free(*text);
        *text = NULL;
        return false;
    }
    return true;
}

/* Where the summary goes: stdout, or stderr when stdout carries the JSON or
 * the trace; nowhere with --log-format json then (stderr is one JSON object
 * per line, and stdout holds the machine's output already). */
static FILE *summary_stream(const run_cli_t *o)
{
    bool json_stdout = o->json && strcmp(o->json, "-") == 0;
    bool trace_stdout = o->trace && strcmp(o->trace, "-") == 0;
    FILE *out = json_stdout || trace_stdout ? stderr : stdout;
    return o->log_format == CLI_LOG_JSON && out == stderr ? NULL : out;
}

/* run --dry-run: the plan as text on the summary's stream (none with
 * --log-format json and stdout taken), and as JSON to --json. */
static int write_plan(const run_cli_t *o, const dp_plan_t *plan, const char *name, FILE *summary_out,
                      out_file_t *json_file)
{
    int code = CLI_EXIT_SUCCESS;
    if (summary_out && dp__plan_render_text(summary_out, plan, name) != DP_OK) {
        cli_errorf("run", "cannot write the plan to %s: %s",
                   summary_out == stdout ? "standard output" : "standard error", strerror(errno));
        code = CLI_EXIT_FAILED;
    }
    if (o->json &&
        (!out_file_open(json_file, "run") || !finish_output(json_file, dp__plan_render_json(json_file->f, plan, name))))
        code = CLI_EXIT_FAILED;
    return code;
}

/* The line a targeted run's summary starts with: "3 of 50 jobs selected:
 * the targets a, b and what they depend on". */
static void selection_line(FILE *out, const dp_plan_t *plan)
{
    size_t selected = plan->n - plan->nexcluded;
    fprintf(out, "%zu of %zu job%s selected: the target%s ", selected, plan->n, plan->n == 1 ? "" : "s",
            plan->ntargets == 1 ? "" : "s");
    for (size_t i = 0; i < plan->ntargets; i++) {
        char *e = dp__text_escape(dp_graph_job_name(plan->g, plan->targets[i]));
        fprintf(out, "%s%s", i ? ", " : "", e ? e : "?");
        free(e);
    }
    fputs(" and what they depend on\n", out);
}

/* A targeted run: the workflow's graph becomes the selected jobs' (the
 * plan's jobs not excluded). false with the message printed. */
static bool select_jobs(dp_workflow_t *wf, dp_plugins_t *pl, const dp_plan_t *plan, char *err, size_t errlen)
{
    unsigned char *keep = malloc(plan->n ? plan->n : 1);
    if (!keep) {
        cli_errorf("run", "out of memory");
        return false;
    }
    for (size_t j = 0; j < plan->n; j++)
        keep[j] = plan->action[j] != DP_PLAN_EXCLUDED;
    int rc = dp__workflow_select(wf, pl, keep, err, errlen);
    free(keep);
    if (rc != DP_OK)
        cli_errorf("run", "%s", err);
    return rc == DP_OK;
}

/* `daggerpool run`. Longer than the rest: it acquires the run's resources one
 * after another and releases them all at one exit (out:), as SQLite's
 * functions do, so that no path can leak one; the steps between are calls. */
int cli_run(int argc, char **argv)
{
    run_cli_t o = {.log_format = CLI_LOG_TEXT};
    int code = parse_args(argc, argv, &o);
    if (code >= 0) {
        free(o.plugin_dirs);
        return code;
    }
    /* Off a terminal, stdout (the summary, or the JSON with --json -) is
     * written 256 KiB at a time rather than in stdio's 4 KiB: a large run's
     * summary is megabytes. Nothing was written to stdout yet. */
    static char stdout_buf[1u << 18];
    if (!isatty(STDOUT_FILENO))
        setvbuf(stdout, stdout_buf, _IOFBF, sizeof stdout_buf);

    dp_log_level_t level = o.quiet          ? DP_LOG_ERROR
                           : o.verbose >= 2 ? DP_LOG_DEBUG
                           : o.verbose == 1 ? DP_LOG_INFO
                                            : DP_LOG_WARN;
    FILE *summary_out = summary_stream(&o);
    if (o.log_format == CLI_LOG_JSON) /* the command's own messages as JSON lines too */
        cli_messages_json();

    char *err = calloc(1, 16384);
    dp_workflow_t *wf = NULL;
    dp_plugins_t *pl = NULL;
    dp_store_t *store = NULL;
    dp_ctx_t *parent = NULL;
    console_t *con = NULL;
    trace_rec_t *trace = NULL;
    dp_result_t *r = NULL;
    dp_reloader_t *reloader = NULL;
    out_file_t json_file = {.slot = -1}, trace_file = {.slot = -1};
    dp_plan_t plan;
    memset(&plan, 0, sizeof plan);
    uint32_t *reused = NULL;
    size_t nreused = 0;
    cli_state_t *state = NULL;
    cli_job_note_t *notes = NULL;
    char *json_text = NULL;
    size_t json_len = 0;
    code = CLI_EXIT_INVALID;
    if (!err)
        goto out;

    if (!check_outputs(&o, &json_file, &trace_file))
        goto out;
    if (!cli_check_dirs("run", o.plugin_dirs, o.nplugin_dirs))
        goto out;
    if (!(con = console_new(stderr, o.log_format, level, !o.quiet)))
        goto oom;
    cli_heap_for_workflow(o.file);
    if (!(wf = dp__workflow_load_for_build(o.file, err, 16384))) {
        cli_put_lines(stderr, err);
        goto out;
    }
    cli_heap_loaded();
    if (!(pl = dp_plugins_new()) || !(store = dp_store_new()))
        goto oom;
    dp_plugins_set_log(pl, console_log_cb, con, level);
    dp_plugins_set_store(pl, store);
    dp_plugins_allow_insecure(pl, o.allow_insecure);
    cli_plugin_search_path(pl, wf, o.plugin_dirs, o.nplugin_dirs);
    if (dp_workflow_build(wf, pl, err, 16384) != DP_OK) {
        cli_put_lines(stderr, err);
        goto out;
    }
    /* The whole file is checked: now the targets (each unknown one
     * refused), what they need, and what is reused (o.sel.notes: the state
     * code's). */
    const char *name = dp_workflow_name(wf);
    /* The durable state: refused (exit 2) before anything runs, or none
     * (warned) where it cannot be written. A dry run reads it (--resume)
     * and records nothing. */
    if ((!o.dry_run || o.state.resume) && cli_state_open("run", &o.state, o.file, name, con, &state) != 0)
        goto out;
    if (o.state.resume && !cli_state_resume_notes(state, wf, con, &notes, &o.sel.nnotes))
        goto oom;
    o.sel.notes = notes;
    if (!o.dry_run)
        cli_state_attach_store(state, store);
    if (!cli_plan_make("run", wf, &o.sel, &plan))
        goto out;
    if (o.dry_run) {
        code = write_plan(&o, &plan, name, summary_out, &json_file);
        goto out;
    }
    if (plan.ntargets && !select_jobs(wf, pl, &plan, err, 16384))
        goto out;
    dp_graph_t *g = dp_workflow_graph(wf);
    if (dp__plan_reused_ids(&plan, g, &reused, &nreused) != DP_OK)
        goto oom;
    if (o.json && !out_file_open(&json_file, "run"))
        goto out;
    if (o.trace) {
        if (!out_file_open(&trace_file, "run"))
            goto out;
        if (!(trace = trace_rec_new(trace_file.f, g, name)))
            goto oom;
    }

    dp_run_opts_t opts;
    cli_run_opts(wf, &o.flags, &opts);
    if (!(parent = dp_ctx_new(NULL, 0)))
        goto oom;
    sinks_t sinks = {con, trace, state};
    opts.parent = parent;
    opts.store = store;
    opts.log = console_log_cb;
    opts.log_user = con;
    opts.log_level = level;
    opts.on_event = on_event;
    opts.event_user = &sinks;
    opts.reused = reused;
    opts.nreused = nreused;

    /* Hot swap: a plugin file that changes during the run (or SIGHUP) is
     * reloaded; jobs that have not started yet run the new code. */
    if (!(reloader = dp_reloader_new(pl, NULL, err, 16384)) || dp_reloader_start(reloader) != DP_OK)
        console_logf(con, DP_LOG_WARN, "plugins will not be reloaded during this run: %s",
                     reloader ? "cannot start the watcher thread" : err);
    console_begin(con, g);
    if (cli_signals_install(parent) != DP_OK)
        console_logf(con, DP_LOG_WARN, "cannot catch SIGINT/SIGTERM: an interrupt will not save the result");
    if (cli_signals_install_hup(reloader) != DP_OK)
        console_logf(con, DP_LOG_WARN, "cannot catch SIGHUP: it will not reload plugins");
    cli_state_expected_durations(state, wf, g);
    cli_state_run_begin(state, "run", wf, g);
    r = dp_graph_run(g, &opts, err, 16384);
    cli_signals_restore_hup();
    /* From here a signal ends the process at once (nothing left to cancel),
     * the temporary files removed. */
    cli_signals_restore();
    dp_reloader_free(reloader);
    reloader = NULL;
    console_end(con);
    if (!r) {
        cli_state_run_end(state, NULL, NULL, 0);
        cli_errorf(NULL, "%s: %s", o.file, err);
        goto out;
    }

    if (summary_out && plan.ntargets)
        selection_line(summary_out, &plan);
    /* With --json, the text made once for both; without, the state makes
     * its copy straight into its compressed form. */
    if (state && o.json && !render_json_text(r, name, &json_text, &json_len))
        goto oom;
    code = write_outputs(&o, r, name, summary_out, &json_file, &trace_file, trace, json_text, json_len);
    if (json_text)
        cli_state_run_end(state, r, json_text, json_len);
    else
        cli_state_run_end_render(state, r, name);
    goto out;

oom:
    cli_errorf("run", "out of memory");
    code = CLI_EXIT_INVALID;
out:
    out_file_discard(&json_file);
    out_file_discard(&trace_file);
    dp_reloader_free(reloader);
    cli_state_detach_store(state, store);
    cli_state_close(state);
    free(json_text);
    dp_result_free(r);
    dp__plan_free(&plan); /* before the workflow: it reads the whole graph */
    free(reused);
    free(notes);
    dp_workflow_free(wf); /* the graph's jobs release their plugin instances */
    dp_plugins_free(pl);
    dp_store_free(store);
    dp_ctx_free(parent);
    trace_rec_free(trace);
    console_free(con);
    free(o.plugin_dirs);
    free(err);
    return code;
}
