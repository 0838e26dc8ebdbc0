/*
 * watch.c - `daggerpool watch FILE`: a controller's reconcile loop.
 *
 * Runs the workflow; when it is not ready, runs it again after --interval,
 * or sooner when the result's requeue_after says so; with --until-ready it
 * ends (exit 0) at the first fully successful run, otherwise it keeps
 * reconciling (a successful run is checked again after the interval) until
 * SIGINT or SIGTERM, which cancel the run under way, write its result and
 * end with exit 130.
 *
 * Hot swap: plugin files are watched (dp_reloader on its own thread), so a
 * fixed plugin serves the next job that starts. The workflow file is
 * watched too (inotify on its directory): a change, or SIGHUP, has it read,
 * checked and built in full at once; a good one replaces the old at the next
 * run, a bad one is refused with its errors and the old one stays.
 *
 * Each run's result goes to stdout as the summary and, with --json-lines,
 * as one JSON object per line appended to PATH (render.c's JSON with two
 * more keys: "run", the 1-based run number, and "workflow_generation", 1 +
 * the workflow reloads taken).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "jsonw.h"
#include "state.h"
#include "listen.h"
#include "service.h"
#include "util.h"

static const char usage[] =
    "usage: daggerpool watch FILE [JOB...] [options]\n"
    "\n"
    "Runs the workflow in FILE again and again, as a controller's reconcile loop: when a run\n"
    "is not ready, it runs again after the interval (sooner if the result asks for it).\n"
    "With JOBs, each run runs only they and what they depend on, as `daggerpool run` does.\n"
    "Plugin files and FILE are watched: a plugin file with new bytes serves the next job that\n"
    "starts (one only touched, or replaced by an identical copy, is left alone); a changed\n"
    "FILE (or SIGHUP) is checked in full and, if valid, used from the next run on.\n"
    "SIGHUP also reloads every plugin. SIGINT or SIGTERM cancel the run under way at once,\n"
    "write its result and end with exit 130. A refused plugin file (cut short, not loadable)\n"
    "is logged as an error, shown with -q too; the old version keeps serving.\n"
    "Under systemd (Type=notify) it reports READY=1 after the first run, STATUS, RELOADING,\n"
    "STOPPING and, with WatchdogSec, WATCHDOG=1 while healthy (see the man page).\n"
    "\n"
    "options:\n"
    "  --interval DUR       pause between runs, such as 10s or 1m (default 30s)\n"
    "  --until-ready        exit 0 at the first run that succeeds (otherwise keep reconciling)\n"
    "  --json-lines PATH    append each run's JSON result to PATH, one line per run (- : stdout)\n"
    "  -j, --jobs N         run at most N jobs at once (overrides workflow.max_concurrent_jobs)\n"
    "  --timeout DUR        timeout of each run; 0 for none (overrides workflow.timeout)\n"
    "  --keep-going         on a failure, skip only its successors (overrides workflow.fail_fast)\n"
    "  --plugin-path DIR    search DIR for plugins (repeatable), after the workflow's plugin_path\n"
    "  --allow-insecure-plugins  load plugin files and directories writable by others (unsafe)\n"
    "  -q, --quiet          only errors in the log\n"
    "  -v, --verbose        more log: -v debug (default: info: runs, reloads, refusals)\n"
    "  --log-format FMT     text (default) or json (one JSON object per line: logs, errors)\n"
    "  --listen ADDR:PORT   serve /metrics, /healthz, /readyz, /api/v1/result, /api/v1/runs and a status\n"
    "                       page at / over HTTP (read-only, unauthenticated); PORT or :PORT is loopback\n"
    "                       (127.0.0.1), another address only as written; port 0 picks a free one\n"
    "                       (overrides workflow.listen)\n"
    "  --no-job-metrics     no per-job series in /metrics (for very large workflows)\n" CLI_STATE_HELP
    "  -h, --help           this help\n"
    "\n"
    "exit codes: 0 ready (--until-ready), 1 ready but the output could not be written, 2 invalid input\n"
    "(nothing ran), 130 interrupted\n";

typedef struct watch_cli {
    const char *file;
    uint64_t interval_ms;
    bool until_ready;
    const char *json_lines;
    cli_run_flags_t flags;
    char **plugin_dirs;
    size_t nplugin_dirs;
    bool allow_insecure;
    int verbose;
    bool quiet;
    cli_log_format_t log_format;
    cli_state_flags_t state;
    cli_selection_t sel; /* targets (argv after FILE) */
    const char *listen;  /* --listen, checked */
    bool no_job_metrics;
} watch_cli_t;

/* Returns -1 when parsing succeeded, else the exit code. */
static int parse_args(int argc, char **argv, watch_cli_t *o)
{
    enum {
        OPT_INTERVAL = 256,
        OPT_UNTIL_READY,
        OPT_JSON_LINES,
        OPT_TIMEOUT,
        OPT_KEEP_GOING,
        OPT_PLUGIN_PATH,
        OPT_ALLOW_INSECURE,
        OPT_LOG_FORMAT,
        OPT_LISTEN,
        OPT_NO_JOB_METRICS
    };
    static const struct option longopts[] = {
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"until-ready", no_argument, NULL, OPT_UNTIL_READY},
        {"json-lines", required_argument, NULL, OPT_JSON_LINES},
        {"jobs", required_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"keep-going", no_argument, NULL, OPT_KEEP_GOING},
        {"plugin-path", required_argument, NULL, OPT_PLUGIN_PATH},
        {"allow-insecure-plugins", no_argument, NULL, OPT_ALLOW_INSECURE},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"state", required_argument, NULL, CLI_STATE_OPT_STATE},
        {"no-state", no_argument, NULL, CLI_STATE_OPT_NO_STATE},
        {"wait", no_argument, NULL, CLI_STATE_OPT_WAIT},
        {"keep-runs", required_argument, NULL, CLI_STATE_OPT_KEEP_RUNS},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"no-job-metrics", no_argument, NULL, OPT_NO_JOB_METRICS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 0;
    int c;
    char err[256];
    while ((c = getopt_long(argc, argv, ":j:qvh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_INTERVAL:
            if (dp_duration_parse(optarg, &o->interval_ms, err, sizeof err) != DP_OK)
                return cli_usage_error("watch", "--interval: %s", err);
            if (o->interval_ms == 0)
                return cli_usage_error("watch", "--interval 0 would spin; give at least 1ms");
            break;
        case OPT_UNTIL_READY: o->until_ready = true; break;
        case OPT_JSON_LINES: o->json_lines = optarg; break;
        case 'j':
            if (!cli_parse_uint(optarg, 1, 100000, &o->flags.jobs))
                return cli_usage_error("watch", "-j %s: expected a number of jobs from 1 to 100000", optarg);
            break;
        case OPT_TIMEOUT:
            if (dp_duration_parse(optarg, &o->flags.timeout_ms, err, sizeof err) != DP_OK)
                return cli_usage_error("watch", "--timeout: %s", err);
            o->flags.timeout_set = true;
            break;
        case OPT_KEEP_GOING: o->flags.keep_going = true; break;
        case OPT_PLUGIN_PATH:
            if (!cli_list_push(&o->plugin_dirs, &o->nplugin_dirs, optarg))
                return cli_usage_error("watch", "out of memory");
            break;
        case OPT_ALLOW_INSECURE: o->allow_insecure = true; break;
        case 'q': o->quiet = true; break;
        case 'v': o->verbose++; break;
        case OPT_LOG_FORMAT:
            if (!cli_parse_log_format(optarg, &o->log_format))
                return cli_usage_error("watch", "--log-format %s: expected text or json", optarg);
            break;
        case OPT_LISTEN: {
            dp__listen_addr_t a;
            if (dp__listen_parse(optarg, &a, err, sizeof err) != DP_OK)
                return cli_usage_error("watch", "--listen: %s", err);
            o->listen = optarg;
            break;
        }
        case OPT_NO_JOB_METRICS: o->no_job_metrics = true; break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_SUCCESS;
        case ':': return cli_usage_error("watch", "%s needs a value", argv[optind - 1]);
        case CLI_STATE_OPT_STATE:
        case CLI_STATE_OPT_NO_STATE:
        case CLI_STATE_OPT_WAIT:
        case CLI_STATE_OPT_KEEP_RUNS: {
            int code = cli_state_flag("watch", c, optarg, &o->state);
            if (code >= 0)
                return code;
            break;
        }
        default: return cli_usage_error("watch", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("watch", "no workflow file given");
    o->file = argv[optind];
    o->sel.targets = argv + optind + 1; /* the rest are targets */
    o->sel.ntargets = (size_t)(argc - optind - 1);
    return -1;
}

/* The loop's state. */
typedef struct watcher {
    watch_cli_t *o;
    console_t *con;
    dp_plugins_t *pl;
    dp_reloader_t *reloader;
    char **dirs; /* plugin_path directories added so far (no duplicates) */
    size_t ndirs;
    dp_workflow_t *wf;   /* what runs */
    dp_workflow_t *next; /* a reloaded, valid workflow waiting for the next run */
    unsigned generation;
    int in_fd, in_wd; /* inotify on the workflow file's directory */
    char *base;       /* the workflow file's name in it */
    char *err;
    cli_notify_t *notify;          /* systemd's notification socket, or NULL */
    svc_t *svc;                    /* --listen's HTTP endpoints, or NULL */
    cli_state_t *state;            /* NULL: --no-state, or it cannot be written */
    unsigned durations_generation; /* the generation given the state's durations (0: none) */
} watcher_t;

static void on_state_event(void *user, const dp_event_t *ev)
{
    cli_state_event(user, ev);
}

/* Adds wf's plugin_path directories not added before (a reloaded workflow
 * may bring new ones; the search path only grows). */
static void add_search_path(watcher_t *w, const dp_workflow_t *wf)
{
    const char *dir;
    for (size_t i = 0; (dir = dp_workflow_plugin_path(wf, i)); i++) {
        bool seen = false;
        for (size_t k = 0; k < w->ndirs && !seen; k++)
            seen = strcmp(w->dirs[k], dir) == 0;
        char *copy = seen ? NULL : strdup(dir);
        if (copy && cli_list_push(&w->dirs, &w->ndirs, copy))
            dp_plugins_add_path(w->pl, copy);
        else
            free(copy);
    }
}

/* With targets: wf's graph becomes the selected jobs' (plan.c says which),
 * for the first workflow and every reloaded one alike. False: a target
 * names no job of wf (said on stderr), or no memory. */
static bool select_targets(watcher_t *w, dp_workflow_t *wf)
{
    if (!w->o->sel.ntargets)
        return true;
    dp_plan_t plan;
    memset(&plan, 0, sizeof plan);
    if (!cli_plan_make("watch", wf, &w->o->sel, &plan)) {
        snprintf(w->err, 16384, "a target names no job of %s (said above)", w->o->file);
        return false;
    }
    unsigned char *keep = malloc(plan.n ? plan.n : 1);
    int rc = DP_ENOMEM;
    if (keep) {
        for (size_t j = 0; j < plan.n; j++)
            keep[j] = plan.action[j] != DP_PLAN_EXCLUDED;
        rc = dp__workflow_select(wf, w->pl, keep, w->err, 16384);
    } else {
        snprintf(w->err, 16384, "out of memory");
    }
    if (rc == DP_OK)
        console_logf(w->con, DP_LOG_INFO, "%zu of %zu jobs selected: the targets and what they depend on",
                     plan.n - plan.nexcluded, plan.n);
    else
        cli_errorf("watch", "%s", w->err);
    free(keep);
    dp__plan_free(&plan);
    return rc == DP_OK;
}

/* Reads, checks and builds the workflow file. NULL with w->err set. */
static dp_workflow_t *load_workflow(watcher_t *w)
{
    dp_workflow_t *wf = dp__workflow_load_for_build(w->o->file, w->err, 16384);
    if (!wf)
        return NULL;
    add_search_path(w, wf);
    if (dp_workflow_build(wf, w->pl, w->err, 16384) != DP_OK || !select_targets(w, wf)) {
        dp_workflow_free(wf);
        return NULL;
    }
    return wf;
}

/* A change of the workflow file (or SIGHUP): the new one is checked now, and
 * kept for the next run if valid. */
static void reload_workflow(watcher_t *w, const char *why)
{
    dp_workflow_t *wf = load_workflow(w);
    if (!wf) {
        console_logf(w->con, DP_LOG_ERROR, "workflow %s (%s) refused; the previous version stays in use:\n%s",
                     w->o->file, why, w->err);
        return;
    }
    dp_workflow_free(w->next);
    w->next = wf;
    /* Building may have loaded plugins the old workflow did not use. */
    dp_reloader_refresh(w->reloader);
    console_logf(w->con, DP_LOG_INFO, "workflow %s (%s) is valid: %zu job(s); it is used from the next run on",
                 w->o->file, why, dp_graph_job_count(dp_workflow_graph(wf)));
}

static void watch_file(watcher_t *w)
{
    char *copy = strdup(w->o->file);
    if (!copy)
        return;
    char *slash = strrchr(copy, '/');
    const char *dir = slash ? (slash == copy ? "/" : copy) : ".";
    w->base = strdup(slash ? slash + 1 : copy);
    if (slash && slash != copy)
        *slash = '\0';
    w->in_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->in_fd >= 0)
        w->in_wd = inotify_add_watch(w->in_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY | IN_ONLYDIR);
    if (w->in_fd < 0 || w->in_wd < 0)
        console_logf(w->con, DP_LOG_WARN, "cannot watch %s for changes (%s); SIGHUP still reloads it", dir,
                     strerror(errno));
    free(copy);
}

/* Drains the inotify queue; true if the workflow file was among the names. */
static bool workflow_changed(watcher_t *w)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool changed = false;
    ssize_t n;
    while (w->in_fd >= 0 && (n = read(w->in_fd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            p += sizeof *ev + ev->len;
            if ((ev->mask & IN_Q_OVERFLOW) || (ev->len && strcmp(ev->name, w->base) == 0))
                changed = true;
        }
    }
    return changed;
}

/* An editor writes in several steps: wait until the file has been quiet for
 * this long before reading it. */
#define WORKFLOW_SETTLE_MS 100

/* Waits up to ms, returning early on SIGINT/SIGTERM (false). Workflow
 * changes and SIGHUP are handled while waiting. */
static bool wait_between_runs(watcher_t *w, dp_ctx_t *parent, uint64_t ms)
{
    uint64_t end = dp__now_ns() / 1000000u + ms;
    uint64_t settle_until = 0; /* a file change waits for quiet */
    for (;;) {
        if (dp_ctx_done(parent))
            return false;
        uint64_t now = dp__now_ns() / 1000000u;
        if (settle_until && now >= settle_until) {
            settle_until = 0;
            reload_workflow(w, "changed on disk");
        }
        if (now >= end && !settle_until)
            return true;
        uint64_t until = settle_until && settle_until < end ? settle_until : end;
        if (settle_until && settle_until > end)
            until = settle_until; /* finish the reload before the next run */
        struct pollfd fds[3] = {
            {.fd = dp_ctx_fd(parent), .events = POLLIN},
            {.fd = cli_signals_hup_fd(), .events = POLLIN},
            {.fd = w->in_fd, .events = POLLIN},
        };
        uint64_t alive_every = cli_notify_alive_every_ms(w->notify);
        if (alive_every && until > now + alive_every)
            until = now + alive_every; /* the watchdog hears from the loop */
        int timeout = until > now ? (int)(until - now < INT_MAX ? until - now : INT_MAX) : 0;
        int n = poll(fds, 3, timeout);
        cli_notify_alive(w->notify);
        if (n < 0 && errno != EINTR)
            return true;
        if (n <= 0)
            continue;
        if (fds[1].revents && cli_signals_hup_take()) {
            cli_notify_reloading(w->notify);
            reload_workflow(w, "SIGHUP");
            cli_notify_reloaded(w->notify, w->next ? "workflow reloaded; used from the next run on"
                                                   : "workflow reload refused; the previous version stays in use");
        }
        if (fds[2].revents && workflow_changed(w))
            settle_until = dp__now_ns() / 1000000u + WORKFLOW_SETTLE_MS;
    }
}

/* Appends r as one JSON line: the result's members, then the run's number
 * and the workflow generation it ran. Made whole in memory first, so a
 * failure never leaves half a line in the file. */
static bool write_json_line(FILE *f, const dp_result_t *r, const char *name, unsigned run, unsigned generation)
{
    dp__jsonw_t w;
    dp__jsonw_init(&w, NULL, 0);
    dp__jsonw_object_open(&w);
    dp__render_result_members(&w, r, name);
    dp__jsonw_key_lit(&w, "run");
    dp__jsonw_int(&w, run);
    dp__jsonw_key_lit(&w, "workflow_generation");
    dp__jsonw_int(&w, generation);
    dp__jsonw_object_close(&w);
    size_t len = 0;
    char *line = dp__jsonw_finish(&w) == 0 ? dp__jsonw_take(&w, &len) : NULL;
    dp__jsonw_discard(&w);
    if (!line)
        return false;
    line[len] = '\n'; /* over the NUL: the writer reserved it */
    bool ok = fwrite(line, 1, len + 1, f) == len + 1 && fflush(f) == 0;
    free(line);
    return ok;
}

/* The JSON lines file, before anything runs: a regular file or a new one
 * (a FIFO would block the open, a device is not what was meant), and not
 * the workflow file; stdout for -. False: refused (said). */
static bool open_json_lines(const watch_cli_t *o, bool json_stdout, FILE **jl)
{
    if (json_stdout) {
        *jl = stdout;
        return true;
    }
    if (!o->json_lines)
        return true;
    cli_file_id_t a, b;
    cli_file_id(o->json_lines, &a);
    cli_file_id(o->file, &b);
    bool same = cli_same_file(&a, &b);
    cli_file_id_free(&a);
    cli_file_id_free(&b);
    if (same) {
        cli_usage_error("watch", "--json-lines %s names the workflow file %s; append the results elsewhere",
                        o->json_lines, o->file);
        return false;
    }
    int fd = cli_open_regular("watch", "--json-lines", o->json_lines, O_WRONLY | O_APPEND | O_CREAT,
                              "name a regular file or a new one, or - for standard output");
    if (fd < 0)
        return false;
    if (!(*jl = fdopen(fd, "a"))) {
        close(fd);
        cli_errorf("watch", "out of memory");
        return false;
    }
    return true;
}

/* The first workflow, built. The search path: its plugin_path,
 * --plugin-path, the environment, the default; a reloaded workflow's new
 * directories are appended (add_search_path). False: refused (said). */
static bool load_first_workflow(watcher_t *w)
{
    const watch_cli_t *o = w->o;
    cli_heap_for_workflow(o->file);
    dp_workflow_t *first = dp__workflow_load_for_build(o->file, w->err, 16384);
    if (!first) {
        cli_put_lines(stderr, w->err);
        return false;
    }
    cli_heap_loaded();
    add_search_path(w, first);
    cli_plugin_search_path(w->pl, NULL, o->plugin_dirs, o->nplugin_dirs);
    if (dp_workflow_build(first, w->pl, w->err, 16384) != DP_OK) {
        cli_put_lines(stderr, w->err);
        dp_workflow_free(first);
        return false;
    }
    if (!select_targets(w, first)) { /* an unknown target: said */
        dp_workflow_free(first);
        return false;
    }
    w->wf = first;
    cli_heap_settle();
    return true;
}

/* The pause after a run: the interval, or the result's requeue hint when
 * the run did not succeed and the hint is sooner. */
static uint64_t next_delay(const watch_cli_t *o, dp_run_outcome_t outcome, int64_t requeue)
{
    uint64_t delay = o->interval_ms;
    if (outcome != DP_RUN_SUCCESS && requeue >= 0 && (uint64_t)requeue < delay)
        delay = requeue > 0 ? (uint64_t)requeue : 1;
    return delay;
}

/* Called once before each run starts and once after it ended (its result
 * written), on the loop's thread: what else should learn of runs (the HTTP
 * endpoints; a service manager) is told here. Nothing here may wait on
 * anyone: the HTTP side gets a new snapshot swapped in. */
static void watch_before_run(watcher_t *w, unsigned run, const dp_run_opts_t *opts)
{
    if (w->svc)
        svc_run_started(w->svc, run, opts->timeout_ms);
}

/* The runs /api/v1/runs lists: as many as the state keeps, at most this. */
#define SVC_RUNS_MAX 1000u

static void watch_after_run(watcher_t *w, const dp_result_t *r, unsigned run, uint64_t next_ms)
{
    if (!w->svc)
        return;
    svc_run_ended(w->svc, r, dp_workflow_name(w->wf), run, w->generation, next_ms);
    if (w->state) {
        size_t len = 0;
        char *runs = cli_state_runs_json(w->state, SVC_RUNS_MAX, &len);
        if (runs)
            svc_set_runs(w->svc, runs, len);
    }
}

/* --listen, else workflow.listen: the HTTP endpoints, serving before the
 * first run starts. False: refused (said; exit 2, nothing ran). */
static bool start_service(watcher_t *w)
{
    const char *listen = w->o->listen ? w->o->listen : dp__workflow_listen(w->wf);
    if (!listen)
        return true;
    dp__listen_addr_t a;
    char err[512];
    if (dp__listen_parse(listen, &a, err, sizeof err) != DP_OK) {
        cli_errorf("watch", "%s", err); /* checked when read: not reached */
        return false;
    }
    if (!(w->svc = svc_new(w->con, !w->o->no_job_metrics, w->o->interval_ms))) {
        cli_errorf("watch", "out of memory");
        return false;
    }
    if (svc_start(w->svc, &a, err, sizeof err) != DP_OK) {
        cli_errorf("watch", "%s%s: %s", w->o->listen ? "--listen " : "workflow.listen = ", listen, err);
        return false;
    }
    return true;
}

/* Run number run of the current workflow, its summary and JSON line
 * written; its outcome and requeue hint. False: the run could not start
 * (said). */
static bool run_once(watcher_t *w, unsigned run, dp_ctx_t *parent, dp_store_t *store, dp_executor_t **executor,
                     FILE *summary_out, FILE *jl, dp_log_level_t level, dp_run_outcome_t *outcome, int64_t *requeue)
{
    const watch_cli_t *o = w->o;
    dp_run_opts_t opts;
    cli_run_opts(w->wf, &o->flags, &opts);
    opts.parent = parent;
    opts.store = store; /* one store for every run: plugins keep state across runs and swaps */
    opts.log = console_log_cb;
    opts.log_user = w->con;
    opts.log_level = level;
    if (!*executor) /* sized by the first run; a bigger bound later adds threads per run */
        *executor = dp_executor_new(opts.max_concurrent_jobs);
    opts.executor = *executor; /* NULL (no memory): threads per run, as before */
    if (w->state && w->durations_generation != w->generation) {
        /* The state's durations weight the critical path, once per workflow
         * generation (later runs keep the paths the first one made). */
        cli_state_expected_durations(w->state, w->wf, dp_workflow_graph(w->wf));
        w->durations_generation = w->generation;
    }
    if (w->state && cli_state_run_begin(w->state, "watch", w->wf, dp_workflow_graph(w->wf))) {
        opts.on_event = on_state_event;
        opts.event_user = w->state;
    }
    watch_before_run(w, run, &opts);
    cli_notify_run_start(w->notify, opts.timeout_ms);
    dp_result_t *r = dp_graph_run(dp_workflow_graph(w->wf), &opts, w->err, 16384);
    if (!r) {
        cli_state_run_end(w->state, NULL, NULL, 0);
        cli_notify_run_end(w->notify, "a run could not start");
        cli_errorf(NULL, "%s: %s", o->file, w->err);
        return false;
    }
    const char *name = dp_workflow_name(w->wf);
    if (w->state) {
        /* What `run --json` would have written, for `show --json`. */
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        int rc = f ? dp__render_json(f, r, name) : DP_ENOMEM;
        if (f && fclose(f) != 0)
            rc = DP_ENOMEM;
        cli_state_run_end(w->state, r, rc == DP_OK ? text : NULL, rc == DP_OK ? len : 0);
        free(text);
    }
    *outcome = dp_result_outcome(r);
    *requeue = dp_result_requeue_after_ms(r);
    if (summary_out) {
        fprintf(summary_out, "--- run %u ---\n", run);
        if (dp__render_summary(summary_out, r, name) != DP_OK)
            console_logf(w->con, DP_LOG_ERROR, "cannot write run %u's summary: %s", run, strerror(errno));
    }
    if (jl && !write_json_line(jl, r, name, run, w->generation))
        console_logf(w->con, DP_LOG_ERROR, "cannot append run %u's JSON line to %s", run, o->json_lines);
    watch_after_run(w, r, run, next_delay(o, *outcome, *requeue));
    dp_result_free(r);
    return true;
}

/* `daggerpool watch`. Longer than the rest for the reason cli_run is: its
 * resources are acquired in order and released at one exit (out:); the
 * loop's steps are calls (run_once, wait_between_runs). */
int cli_watch(int argc, char **argv)
{
    watch_cli_t o = {.interval_ms = 30000, .log_format = CLI_LOG_TEXT};
    int code = parse_args(argc, argv, &o);
    if (code >= 0) {
        free(o.plugin_dirs);
        return code;
    }
    dp_log_level_t level = o.quiet ? DP_LOG_ERROR : o.verbose >= 1 ? DP_LOG_DEBUG : DP_LOG_INFO;
    bool json_stdout = o.json_lines && strcmp(o.json_lines, "-") == 0;
    FILE *summary_out = json_stdout ? stderr : stdout;
    /* With --log-format json, stderr is one JSON object per line: no
     * summary there (the JSON lines on stdout say it all). */
    if (o.log_format == CLI_LOG_JSON) {
        cli_messages_json();
        if (summary_out == stderr)
            summary_out = NULL;
    }

    watcher_t w = {.o = &o, .in_fd = -1, .in_wd = -1, .generation = 1};
    dp_store_t *store = NULL;
    dp_ctx_t *parent = NULL;
    dp_executor_t *executor = NULL; /* the workers' threads, kept from run to run */
    FILE *jl = NULL;
    code = CLI_EXIT_INVALID;
    if (!(w.err = calloc(1, 16384)))
        goto oom;
    if (!cli_check_dirs("watch", o.plugin_dirs, o.nplugin_dirs))
        goto out;
    if (!open_json_lines(&o, json_stdout, &jl))
        goto out;
    if (!(w.con = console_new(stderr, o.log_format, level, false)))
        goto oom;
    w.notify = cli_notify_open(w.con);
    if (!(w.pl = dp_plugins_new()) || !(store = dp_store_new()))
        goto oom;
    dp_plugins_set_log(w.pl, console_log_cb, w.con, level);
    dp_plugins_set_store(w.pl, store);
    dp_plugins_allow_insecure(w.pl, o.allow_insecure);

    if (!load_first_workflow(&w))
        goto out;
    /* The durable state: refused (exit 2) before anything runs, or none
     * (warned). Its store entries are loaded before the first run, so a
     * restarted watch adopts what plugins kept (slurm.batch's job ids). */
    if (cli_state_open("watch", &o.state, o.file, dp_workflow_name(w.wf), w.con, &w.state) != 0)
        goto out;
    cli_state_attach_store(w.state, store);
    if (!start_service(&w))
        goto out;
    if (!(parent = dp_ctx_new(NULL, 0)))
        goto oom;
    dp_reloader_opts_t ropts;
    dp_reloader_opts_init(&ropts);
    ropts.on_reload = w.svc ? svc_reload_event : NULL;
    ropts.user = w.svc;
    if (!(w.reloader = dp_reloader_new(w.pl, &ropts, w.err, 16384)) || dp_reloader_start(w.reloader) != DP_OK)
        console_logf(w.con, DP_LOG_WARN, "plugins will not be reloaded: %s",
                     w.reloader ? "cannot start the watcher thread" : w.err);
    watch_file(&w);
    if (cli_signals_install(parent) != DP_OK)
        console_logf(w.con, DP_LOG_WARN, "cannot catch SIGINT/SIGTERM: an interrupt will not save the result");
    if (cli_signals_install_hup(w.reloader) != DP_OK)
        console_logf(w.con, DP_LOG_WARN, "cannot catch SIGHUP: it will not reload anything");

    for (unsigned run = 1;; run++) {
        if (w.next) {
            dp_workflow_free(w.wf);
            w.wf = w.next;
            w.next = NULL;
            w.generation++;
            console_logf(w.con, DP_LOG_INFO, "run %u uses the reloaded workflow (generation %u)", run, w.generation);
        }
        dp_run_outcome_t outcome;
        int64_t requeue;
        if (!run_once(&w, run, parent, store, &executor, summary_out, jl, level, &outcome, &requeue)) {
            code = CLI_EXIT_INVALID;
            break;
        }
        char status[160];
        if (outcome == DP_RUN_CANCELLED || dp_ctx_done(parent)) {
            snprintf(status, sizeof status, "run %u: %s", run, dp_run_outcome_name(outcome));
            cli_notify_run_end(w.notify, status);
            code = CLI_EXIT_INTERRUPTED;
            break;
        }
        if (o.until_ready && outcome == DP_RUN_SUCCESS) {
            console_logf(w.con, DP_LOG_INFO, "ready after %u run(s)", run);
            snprintf(status, sizeof status, "ready after %u run(s)", run);
            cli_notify_run_end(w.notify, status);
            code = CLI_EXIT_SUCCESS;
            break;
        }
        uint64_t delay = next_delay(&o, outcome, requeue);
        char d[32];
        dp_duration_format(delay, d, sizeof d);
        snprintf(status, sizeof status, "run %u: %s; next run in %s", run, dp_run_outcome_name(outcome), d);
        cli_notify_run_end(w.notify, status);
        console_logf(w.con, DP_LOG_INFO, "%s", status);
        if (!wait_between_runs(&w, parent, delay)) {
            code = CLI_EXIT_INTERRUPTED;
            break;
        }
    }
    if (code == CLI_EXIT_INTERRUPTED)
        cli_notify_stopping(w.notify);
    cli_signals_restore_hup();
    cli_signals_restore();
    goto out;

oom:
    cli_errorf("watch", "out of memory");
    code = CLI_EXIT_INVALID;
out:
    cli_notify_close(w.notify);
    if (jl && jl != stdout)
        fclose(jl);
    dp_reloader_free(w.reloader); /* before the service its callback counts in */
    svc_free(w.svc);              /* nothing listens once the loop has ended */
    cli_state_detach_store(w.state, store);
    cli_state_close(w.state);
    dp_workflow_free(w.next);
    dp_workflow_free(w.wf);
    dp_plugins_free(w.pl);
    dp_store_free(store);
    dp_executor_free(executor);
    dp_ctx_free(parent);
    console_free(w.con);
    if (w.in_fd >= 0)
        close(w.in_fd);
    for (size_t i = 0; i < w.ndirs; i++)
        free(w.dirs[i]);
    free(w.dirs);
    free(w.base);
    free(w.err);
    free(o.plugin_dirs);
    return code;
}
