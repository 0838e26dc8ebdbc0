/* service.h - `daggerpool watch --listen`: what the loop publishes for the
 * HTTP endpoints (http_server.c), and the calls the loop makes.
 *
 * The loop never waits on a client: after each run it renders what the
 * endpoints serve (the result's JSON, the metrics' text, the job table) into
 * a new immutable snapshot, and swaps it in under a lock held for a pointer
 * store. A request takes a reference to the snapshot of the moment (the
 * same lock, a pointer load and an increment) and serves from it however
 * long the client takes; the last reference frees it. */
#ifndef DP_CLI_SERVICE_H
#define DP_CLI_SERVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "listen.h"

/* One row of the status page's job table. The strings live in the
 * snapshot; any may be NULL. */
typedef struct svc_job_row {
    const char *name;
    int status; /* dp_status_t */
    unsigned attempts;
    int64_t duration_ms; /* -1: never started */
    const char *plugin;
    const char *plugin_version;
    const char *error;
} svc_job_row_t;

typedef struct svc_frontier_row {
    const char *job;
    int status;
    const char *blocked_by; /* names, ", " between them */
} svc_frontier_row_t;

/* What the last run left, read-only once published. */
typedef struct svc_snapshot {
    unsigned refs; /* atomic */
    bool have_run; /* false: no run has ended yet */
    unsigned run, generation;
    int outcome; /* dp_run_outcome_t */
    char *workflow;
    uint64_t ended_ms;    /* Unix time, ms */
    int64_t duration_ms;  /* of the run */
    uint64_t next_run_ms; /* Unix time, ms: when the next run is due */
    char *first_error, *first_not_ready;
    char *blocker;     /* /readyz: the first job that is not ready, with its status */
    char *result_json; /* byte for byte what --json writes */
    size_t result_len;
    char *metrics; /* svc_metrics_render_runs */
    size_t metrics_len;
    size_t njobs;
    svc_job_row_t *jobs;
    size_t nfrontiers;
    svc_frontier_row_t *frontiers;
    size_t status_count[5];
    char *dot; /* the DAG coloured by status; NULL when too large to draw */
    char *arena;
    /* The SVG of dot, laid out on first request (graph_svg.c), kept. */
    pthread_mutex_t svg_lock;
    bool svg_done;
    char *svg;
    size_t svg_len;
} svc_snapshot_t;

/* What changes between runs: read with the snapshot under the same lock. */
typedef struct svc_live {
    bool running;
    unsigned run;              /* the run under way, or the last one */
    uint64_t run_started_ms;   /* Unix time */
    uint64_t run_started_mono; /* CLOCK_MONOTONIC, ms */
    uint64_t next_due_mono;    /* when the next run should start; 0: none */
    uint64_t timeout_ms;       /* of a run; 0: none */
    uint64_t started_mono;     /* the service's start */
    uint64_t grace_ms;         /* /healthz: how late the loop may be before it is stuck */
} svc_live_t;

/* Beyond this many jobs the DAG is not drawn (the layout would take
 * longer than the page may): the page says so and shows the table. */
#define SVC_GRAPH_MAX_JOBS 1000

typedef struct svc svc_t;

/* per_job: per-job metric labels; interval_ms: watch's --interval (how
late the loop may be before /healthz calls it stuck: one interval, at
least 1 s, at most 60 s). NULL: out of memory. */
svc_t *svc_new(console_t *con, bool per_job, uint64_t interval_ms);
/* Binds addr and serves from threads of the server's own; logs the
 * address bound (port 0: the one the kernel picked). DP_OK or an error with
 * err set. */
int svc_start(svc_t *s, const dp__listen_addr_t *addr, char *err, size_t errlen);
/* Stops the server (nothing listens once it returns) and frees s. */
void svc_free(svc_t *s);

/* The loop's thread: run number run starts (its timeout, 0: none). */
void svc_run_started(svc_t *s, unsigned run, uint64_t timeout_ms);
/* The loop's thread: a run ended with r (of workflow name, generation);
 * the next is due after next_ms. Renders and publishes a new snapshot. */
void svc_run_ended(svc_t *s, const dp_result_t *r, const char *name, unsigned run, unsigned generation,
                   uint64_t next_ms);
/* A dp_reload_cb (user: the service): counts plugin reloads. */
void svc_reload_event(void *user, const dp_reload_event_t *ev);

/* Any thread: a reference to the current snapshot and the live state. */
/* /api/v1/runs: the loop hands over the run history's JSON after each run
 * (taken; NULL: none, e.g. --no-state); the server copies it per request
 * (NULL: none was given). */
void svc_set_runs(svc_t *s, char *json, size_t len);
char *svc_runs_copy(svc_t *s, size_t *len);
svc_snapshot_t *svc_acquire(svc_t *s, svc_live_t *live);
void svc_snapshot_release(svc_snapshot_t *snap);
/* The console the service logs to (requests at debug level). */
console_t *svc_console(svc_t *s);
/* The metrics that are read at the scrape (metrics.h). */
struct svc_metrics *svc_metrics_of(svc_t *s);

#endif /* DP_CLI_SERVICE_H */
