/* graph_svg.c - DOT to SVG through libgvc (graph_svg.h).
 *
 * The DOT is render.c's (`graph --result`'s colours); the dot layout runs
 * in the server's thread that asked, on the first request for a run's
 * graph, and the SVG is kept with the run's snapshot. One context for the
 * process, made on first use: making it loads Graphviz's plugins. */
#include "graph_svg.h"

#include <gvc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t gv_lock = PTHREAD_MUTEX_INITIALIZER;
static GVC_t *gvc;

char *svc_graph_svg(const char *dot, size_t *len)
{
    char *out = NULL;
    pthread_mutex_lock(&gv_lock);
    if (!gvc)
        gvc = gvContext();
    Agraph_t *g = gvc ? agmemread(dot) : NULL;
    if (g && gvLayout(gvc, g, "dot") == 0) {
        char *data = NULL;
        unsigned int n = 0;
        if (gvRenderData(gvc, g, "svg", &data, &n) == 0 && data && (out = malloc((size_t)n + 1))) {
            memcpy(out, data, n);
            out[n] = '\0';
            *len = n;
        }
        if (data)
            gvFreeRenderData(data);
        gvFreeLayout(gvc, g);
    }
    if (g)
        agclose(g);
    pthread_mutex_unlock(&gv_lock);
    return out;
}

void svc_graph_svg_shutdown(void)
{
    pthread_mutex_lock(&gv_lock);
    if (gvc)
        gvFreeContext(gvc);
    gvc = NULL;
    pthread_mutex_unlock(&gv_lock);
}
