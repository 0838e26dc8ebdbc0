/*
 * plugin_registry.c - the plugin registry: its life (reference counted, see
 * plugin_int.h), the search path and the settings (insecure plugins, log
 * callback, store), the entries (one per plugin name) and the strings
 * interned for results, the registry's log, the listing of loaded versions
 * (dp_plugins_foreach), and the end of a version's life (fini, dlclose).
 *
 * Loading a version (and scanning the search path) is plugin_load.c's,
 * installing and swapping versions plugin_swap.c's, the host API
 * host_api.c's, the job adapter plugin_job.c's; the structs they share are
 * in plugin_int.h. This file calls none of them: they all build on it.
 *
 * Lock order: load_lock before lock (plugin_int.h says what each guards).
 * Here load_lock guards the search path; lock the rest.
 * dp__plugins_unref destroys the registry with neither held.
 */
#include "plugin_registry.h"

#include <ctype.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#ifndef DP_PLUGIN_RELDIR
#define DP_PLUGIN_RELDIR "lib/daggerpool/plugins"
#endif

/* ---- small helpers ------------------------------------------------------ */

/* (plugin_registry.h says what each exported function does.) */

bool dp__plugin_valid_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return false;
    return true;
}

void dp__plugins_log(dp_plugins_t *pl, dp_log_level_t level, const char *job, const char *plugin, const char *fmt, ...)
{
    pthread_mutex_lock(&pl->lock);
    dp_log_cb cb = pl->log;
    void *user = pl->log_user;
    dp_log_level_t max = pl->log_level;
    pthread_mutex_unlock(&pl->lock);
    if (!cb || level > max)
        return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    dp_log_record_t rec = {
        .level = level, .job = job, .attempt = 0, .plugin = plugin, .message = buf, .time_ns = dp__wall_ns()};
    cb(user, &rec);
}

const char *dp__plugins_intern_locked(dp_plugins_t *pl, const char *s)
{
    for (size_t i = 0; i < pl->ninterned; i++)
        if (strcmp(pl->interned[i], s) == 0)
            return pl->interned[i];
    if (pl->ninterned == pl->capinterned) {
        size_t cap = pl->capinterned ? pl->capinterned * 2 : 8;
        char **v = realloc(pl->interned, cap * sizeof(*v));
        if (!v)
            return NULL;
        pl->interned = v;
        pl->capinterned = cap;
    }
    char *c = strdup(s);
    if (!c)
        return NULL;
    pl->interned[pl->ninterned++] = c;
    return c;
}

/* ---- registry ----------------------------------------------------------- */

dp_plugins_t *dp_plugins_new(void)
{
    dp_plugins_t *pl = calloc(1, sizeof(*pl));
    if (!pl)
        return NULL;
    pthread_mutex_init(&pl->load_lock, NULL);
    pthread_mutex_init(&pl->lock, NULL);
    pl->refs = 1;
    pl->log_level = DP_LOG_INFO;
    return pl;
}

static void registry_destroy(dp_plugins_t *pl)
{
    dp_pentry_t *e = pl->entries;
    while (e) {
        dp_pentry_t *next = e->next;
        /* No job holds a pin: each would hold a registry reference. */
        if (e->current)
            dp__pversion_unload(e->current);
        for (dp_pversion_t *v = e->draining; v;) {
            dp_pversion_t *vn = v->next;
            dp__pversion_unload(v);
            v = vn;
        }
        for (dp_pversion_t *v = e->retired; v;) {
            dp_pversion_t *vn = v->next;
            free(v); /* released when its last pin went */
            v = vn;
        }
        for (size_t i = 0; i < e->nused; i++)
            free(e->used[i].name);
        free(e->used);
        free(e->name);
        free(e);
        e = next;
    }
    for (size_t i = 0; i < pl->npaths; i++)
        free(pl->paths[i]);
    free(pl->paths);
    for (size_t i = 0; i < pl->ninterned; i++)
        free(pl->interned[i]);
    free(pl->interned);
    pthread_mutex_destroy(&pl->lock);
    pthread_mutex_destroy(&pl->load_lock);
    free(pl);
}

void dp__plugins_unref(dp_plugins_t *pl)
{
    pthread_mutex_lock(&pl->lock);
    bool last = --pl->refs == 0;
    pthread_mutex_unlock(&pl->lock);
    if (last)
        registry_destroy(pl);
}

void dp_plugins_free(dp_plugins_t *pl)
{
    if (pl)
        dp__plugins_unref(pl);
}

int dp_plugins_add_path(dp_plugins_t *pl, const char *dir)
{
    if (!pl || !dir || !*dir)
        return DP_EINVAL;
    char *copy = strdup(dir);
    if (!copy)
        return DP_ENOMEM;
    pthread_mutex_lock(&pl->load_lock);
    char **v = realloc(pl->paths, (pl->npaths + 1) * sizeof(*v));
    if (!v) {
        pthread_mutex_unlock(&pl->load_lock);
        free(copy);
        return DP_ENOMEM;
    }
    pl->paths = v;
    pl->paths[pl->npaths++] = copy;
    pthread_mutex_unlock(&pl->load_lock);
    return DP_OK;
}

int dp__plugins_add_path_list(dp_plugins_t *pl, const char *list)
{
    if (!pl)
        return DP_EINVAL;
    if (!list)
        return DP_OK;
    const char *s = list;
    while (*s) {
        const char *end = strchr(s, ':');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (n) {
            char *dir = strndup(s, n);
            if (!dir)
                return DP_ENOMEM;
            int rc = dp_plugins_add_path(pl, dir);
            free(dir);
            if (rc != DP_OK)
                return rc;
        }
        s += n;
        if (*s == ':')
            s++;
    }
    return DP_OK;
}

int dp__plugins_default_dir(char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return DP_ESYS;
    exe[n] = '\0';
    /* Strip the file name, then bin/: what is left is the prefix. */
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(exe, '/');
        if (!slash)
            return DP_ESYS;
        *slash = '\0';
    }
    int w = snprintf(buf, len, "%s/%s", exe[0] ? exe : "", DP_PLUGIN_RELDIR);
    return w < 0 || (size_t)w >= len ? DP_EINVAL : DP_OK;
}

void dp_plugins_allow_insecure(dp_plugins_t *pl, bool allow)
{
    if (!pl)
        return;
    pthread_mutex_lock(&pl->lock);
    pl->allow_insecure = allow;
    pthread_mutex_unlock(&pl->lock);
}

void dp_plugins_set_log(dp_plugins_t *pl, dp_log_cb log, void *user, dp_log_level_t level)
{
    if (!pl)
        return;
    pthread_mutex_lock(&pl->lock);
    pl->log = log;
    pl->log_user = user;
    pl->log_level = level;
    pthread_mutex_unlock(&pl->lock);
}

void dp_plugins_set_store(dp_plugins_t *pl, dp_store_t *store)
{
    if (!pl)
        return;
    pthread_mutex_lock(&pl->lock);
    pl->store = store;
    pthread_mutex_unlock(&pl->lock);
}

dp_pentry_t *dp__plugins_find_entry_locked(dp_plugins_t *pl, const char *name)
{
    for (dp_pentry_t *e = pl->entries; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

dp_pentry_t *dp__plugins_get_entry_locked(dp_plugins_t *pl, const char *name)
{
    dp_pentry_t *e = dp__plugins_find_entry_locked(pl, name);
    if (e)
        return e;
    if (!(e = calloc(1, sizeof(*e))))
        return NULL;
    if (!(e->name = strdup(name))) {
        free(e);
        return NULL;
    }
    dp_pentry_t **pp = &pl->entries;
    while (*pp && strcmp((*pp)->name, name) < 0)
        pp = &(*pp)->next;
    e->next = *pp;
    *pp = e;
    return e;
}

int dp__plugins_find_on_path(dp_plugins_t *pl, const char *name, char *path, size_t len, char *err, size_t errlen)
{
    for (size_t i = 0; i < pl->npaths; i++) {
        snprintf(path, len, "%s/%s.so", pl->paths[i], name);
        /* A name that is there but cannot be followed (a symlink loop or a
         * dangling link) is the plugin meant: loading it says why. */
        struct stat st;
        if (access(path, F_OK) == 0 || lstat(path, &st) == 0)
            return DP_OK;
    }
    char dirs[1024] = "";
    size_t off = 0;
    for (size_t i = 0; i < pl->npaths && off < sizeof(dirs); i++)
        off += (size_t)snprintf(dirs + off, sizeof(dirs) - off, "%s%s", i ? ", " : "", pl->paths[i]);
    return dp__seterr(err, errlen, DP_ENOTFOUND,
                      "%s.so: plugin '%s' not found (searched: %s); fix: add the directory that "
                      "holds %s.so to plugin_path, --plugin-path or DAGGERPOOL_PLUGIN_PATH, or give "
                      "its path in the workflow's plugins group",
                      name, name, pl->npaths ? dirs : "no directories", name);
}

int dp__plugins_loaded_path(dp_plugins_t *pl, const char *name, char *buf, size_t len)
{
    if (!pl || !name)
        return DP_EINVAL;
    pthread_mutex_lock(&pl->lock);
    dp_pentry_t *e = dp__plugins_find_entry_locked(pl, name);
    int rc = DP_ENOTFOUND;
    if (e && e->current) {
        snprintf(buf, len, "%s", e->current->path);
        rc = DP_OK;
    }
    pthread_mutex_unlock(&pl->lock);
    return rc;
}

/* ---- the end of a version ------------------------------------------------- */

/* The dynamic loader's calls for plugin copies, one at a time (glibc's
 * own lock serialises them anyway). A new copy may be mapped where an
 * unloaded one was, and the thread that unloaded it (a worker dropping an
 * old version's last pin, with no registry lock since pins take none) and
 * the thread loading the next (a reload) otherwise share no lock that
 * ThreadSanitizer can see: it took the new copy's first writes (its
 * entry point setting a global) for races with the old copy's last reads
 * on the worker. This lock orders each unmapping before any later mapping. */
static pthread_mutex_t dl_mu = PTHREAD_MUTEX_INITIALIZER;

void *dp__plugins_dlopen(const char *path, int flags)
{
    pthread_mutex_lock(&dl_mu);
    void *h = dlopen(path, flags);
    pthread_mutex_unlock(&dl_mu);
    return h;
}

void dp__plugins_dlclose(void *handle)
{
    pthread_mutex_lock(&dl_mu);
    dlclose(handle);
    pthread_mutex_unlock(&dl_mu);
}

/* Calls fini (if init ran), unloads the code and frees what v owns, but
 * not v itself. Never under lock: fini is plugin code. */
void dp__pversion_release(dp_pversion_t *v)
{
    if (v->inited && v->desc.fini)
        v->desc.fini();
    v->inited = false;
    if (v->handle)
        dp__plugins_dlclose(v->handle);
    v->handle = NULL;
    if (v->fd >= 0)
        close(v->fd);
    v->fd = -1;
    free(v->types);
    free(v->type_names);
    free(v->path);
    v->types = NULL;
    v->type_names = NULL;
    v->path = NULL;
    v->ntypes = 0;
}

/* Calls fini (if init ran), unloads the code and frees v. Never under lock:
 * fini is plugin code. */
void dp__pversion_unload(dp_pversion_t *v)
{
    dp__pversion_release(v);
    free(v);
}

/* ---- listing ------------------------------------------------------------ */

void dp__pversion_info(dp_plugin_info_t *info, const dp_pversion_t *v)
{
    memset(info, 0, sizeof(*info));
    info->name = v->desc.name;
    info->version = v->version ? v->version : v->desc.version;
    info->description = v->desc.description;
    info->path = v->path;
    info->abi_major = v->desc.abi_major;
    info->abi_minor = v->desc.abi_minor;
    info->types = v->type_names;
    info->loaded_at_ms = v->loaded_at_ms;
    info->generation = v->generation;
    /* The entry's own reference is no job. Relaxed: a moment's count,
     * under lock or of an unpublished version. */
    unsigned pins = atomic_load_explicit(&v->pins, memory_order_relaxed);
    info->jobs_in_flight = pins - (v->current && pins ? 1u : 0u);
    info->current = v->current;
}

int dp_plugins_foreach(dp_plugins_t *pl, int (*fn)(const dp_plugin_info_t *info, void *arg), void *arg)
{
    if (!pl || !fn)
        return DP_EINVAL;
    /* fn runs under lock (the versions cannot go away meanwhile): it must
     * not call into the registry. */
    pthread_mutex_lock(&pl->lock);
    int rc = 0;
    for (dp_pentry_t *e = pl->entries; e && !rc; e = e->next) {
        dp_plugin_info_t info;
        if (e->current) {
            dp__pversion_info(&info, e->current);
            rc = fn(&info, arg);
        }
        for (dp_pversion_t *v = e->draining; v && !rc; v = v->next) {
            dp__pversion_info(&info, v);
            rc = fn(&info, arg);
        }
    }
    pthread_mutex_unlock(&pl->lock);
    return rc;
}
