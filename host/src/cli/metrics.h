/* metrics.h - the Prometheus series of `daggerpool watch --listen`
 * (/metrics, text exposition format 0.0.4): what the runs add up to, kept
 * by the loop's thread and rendered once a run into text the server hands
 * out as it is; the plugin reloads, counted on the reloader's thread; and
 * the process's own figures, read at each scrape. docs/service.md lists
 * the series. */
#ifndef DP_CLI_METRICS_H
#define DP_CLI_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"

typedef struct svc_metrics svc_metrics_t;

/* per_job: daggerpool_job_attempts_total with a job label (off for very
 * large workflows: one series per job and result). NULL: out of memory. */
svc_metrics_t *svc_metrics_new(bool per_job);
void svc_metrics_free(svc_metrics_t *m);

/* The loop's thread: one run ended at end_s (Unix time) and the next is
 * due after next_s seconds; generation is the workflow's. */
void svc_metrics_add_run(svc_metrics_t *m, const dp_result_t *r, double end_s, double next_s, unsigned generation);
/* The loop's thread: the series of the runs as text (malloc'd, *len set),
 * NULL when out of memory. Before any run: the counters at zero. */
char *svc_metrics_render_runs(svc_metrics_t *m, size_t *len);

/* The reloader's thread: one reload of plugin, swapped (ok) or refused. */
void svc_metrics_reload(svc_metrics_t *m, const char *plugin, bool ok);

/* Any thread: the reload counters and the process metrics (CPU, memory,
 * file descriptors, start time) as text (malloc'd), NULL when out of
 * memory. */
char *svc_metrics_render_live(svc_metrics_t *m, size_t *len);

#endif /* DP_CLI_METRICS_H */
