/* graph_svg.c - DOT to SVG through libgvc (graph_svg.h).
 *
 * The DOT is render.c's (`graph --result`'s colours); the dot layout runs
 * in the server's thread that asked, on the first request for a run's
 * graph, and the SVG is kept with the run's snapshot. One context for the
 * process, made on first use, with two of Graphviz's plugins only: the dot
 * layout and the core renderers (SVG). gvContext() would load every plugin
 * installed, pango's among them, and with it fontconfig, which keeps its
 * caches to the end of the process (ASan's leak check reports them); the
 * core renderer sizes text from Graphviz's own font metrics, which is what
 * a browser's text needs to fit. */
#include "graph_svg.h"

#include <dlfcn.h>
#include <gvc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t gv_lock = PTHREAD_MUTEX_INITIALIZER;
static GVC_t *gvc;
static void *plugin_so[2];

/* The plugin NAME's library from Graphviz's plugin directory: its
 * gvplugin_NAME_LTX_library, or NULL. */
static void *plugin_library(int i, const char *name)
{
    char file[512], sym[128];
    snprintf(file, sizeof file, "%s/libgvplugin_%s%s", DP_GV_PLUGIN_DIR, name, DP_GV_PLUGIN_SUFFIX);
    snprintf(sym, sizeof sym, "gvplugin_%s_LTX_library", name);
    if (!plugin_so[i] && !(plugin_so[i] = dlopen(file, RTLD_NOW | RTLD_LOCAL)))
        return NULL;
    return dlsym(plugin_so[i], sym);
}

static GVC_t *context(void)
{
    static lt_symlist_t builtins[3];
    builtins[0] = (lt_symlist_t){"gvplugin_dot_layout_LTX_library", plugin_library(0, "dot_layout")};
    builtins[1] = (lt_symlist_t){"gvplugin_core_LTX_library", plugin_library(1, "core")};
    builtins[2] = (lt_symlist_t){NULL, NULL};
    if (!builtins[0].address || !builtins[1].address)
        return NULL;
    return gvContextPlugins(builtins, 0);
}

char *svc_graph_svg(const char *dot, size_t *len)
{
    char *out = NULL;
    pthread_mutex_lock(&gv_lock);
    if (!gvc)
        gvc = context();
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
    /* The plugins stay loaded: the dot layout keeps scratch arrays in its
     * globals from one layout to the next, and unloading it would lose
     * the only pointers to them. */
    pthread_mutex_unlock(&gv_lock);
}
