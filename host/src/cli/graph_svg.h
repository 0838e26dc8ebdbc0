/* graph_svg.h - the status page's DAG: DOT laid out and drawn as SVG by
 * Graphviz's library (libgvc) in-process, nothing fetched at run time. */
#ifndef DP_CLI_GRAPH_SVG_H
#define DP_CLI_GRAPH_SVG_H

#include <stddef.h>

/* SVG of the DOT text (malloc'd, *len set), or NULL. libgvc is not
 * thread-safe: calls are serialised. */
char *svc_graph_svg(const char *dot, size_t *len);
/* Frees libgvc's context (at the service's end). */
void svc_graph_svg_shutdown(void);

#endif /* DP_CLI_GRAPH_SVG_H */
