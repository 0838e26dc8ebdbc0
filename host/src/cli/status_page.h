/* status_page.h - the page at / of `watch --listen`: the DAG coloured by
 * status, the job table, the run's outcome and frontiers, the times of the
 * last and next run; it reloads itself when a run starts or ends (polling
 * /api/v1/status, which is rendered here too). Self-contained HTML: no
 * script, style or font is fetched from anywhere. */
#ifndef DP_CLI_STATUS_PAGE_H
#define DP_CLI_STATUS_PAGE_H

#include "service.h"

/* Rows of the job table per page. */
#define SVC_PAGE_ROWS 500

/* The page (malloc'd HTML, *len set) showing the job table's page `page`
 * (from 1; past the end: the last). NULL when out of memory. May lay the
 * DAG out (graph_svg.c) the first time a snapshot is shown. */
char *svc_status_page(svc_snapshot_t *p, const svc_live_t *live, unsigned page, size_t *len);
/* /api/v1/status: run, running, outcome, times, counts by status (JSON,
 * malloc'd). */
char *svc_status_json(const svc_snapshot_t *p, const svc_live_t *live, size_t *len);
/* The snapshot's DAG as SVG, laid out on first call and kept; NULL when
 * not drawn (too many jobs, or libgvc failed). */
const char *svc_snapshot_svg(svc_snapshot_t *p, size_t *len);

#endif /* DP_CLI_STATUS_PAGE_H */
