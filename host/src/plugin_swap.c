/*
 * plugin_swap.c - a plugin's versions: installing the first
 * (dp_plugins_load), swapping in the next (dp_plugins_reload), the pins
 * jobs hold on the version they run on, the draining of old versions and
 * their unloading when the last pin goes, and the counts of the job types
 * (and callbacks) that jobs of live graphs use, which a reload must keep.
 *
 * A reload builds and checks the new version completely (plugin_load.c)
 * before one swap under lock, so a failed reload changes nothing. Jobs that
 * pinned the old version finish on it; it is unloaded (fini, dlclose) by
 * whoever drops its last pin, with no registry lock held.
 *
 * Lock order: load_lock, then lock (plugin_int.h). Loads and reloads hold
 * load_lock throughout and take lock to publish; pins take lock only when
 * they meet a version being swapped out, and the last unpin of an old
 * version.
 * Plugin code (entry, init) runs under load_lock alone; fini after both
 * are released.
 */
#include "plugin_swap.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_load.h"
#include "plugin_registry.h"
#include "util.h"

/* ---- load, reload ------------------------------------------------------- */

/* Installs the first version of plugin `name` (from path, or NAME.so on the
 * search path); a plugin already loaded from the same file is left as it
 * is. */

int dp_plugins_load(dp_plugins_t *pl, const char *name, const char *path, char *err, size_t errlen)
{
    if (!pl || !name)
        return dp__seterr(err, errlen, DP_EINVAL, "dp_plugins_load: no registry or name");
    if (!dp__plugin_valid_name(name))
        return dp__seterr(err, errlen, DP_EINVAL,
                          "'%s' is not a valid plugin name; fix: use letters, digits, '_' and '-'", name);
    pthread_mutex_lock(&pl->load_lock);
    pthread_mutex_lock(&pl->lock);
    dp_pentry_t *e = dp__plugins_find_entry_locked(pl, name);
    dp_pversion_t *cur = e ? e->current : NULL;
    int rc = DP_OK;
    if (cur && path && strcmp(path, cur->path) != 0)
        rc = dp__seterr(err, errlen, DP_EPLUGIN,
                        "%s: plugin '%s' is already loaded from %s; fix: load each plugin name from "
                        "one file",
                        path, name, cur->path);
    pthread_mutex_unlock(&pl->lock);
    if (cur) {
        pthread_mutex_unlock(&pl->load_lock);
        return rc;
    }

    char found[PATH_MAX];
    if (!path) {
        rc = dp__plugins_find_on_path(pl, name, found, sizeof(found), err, errlen);
        if (rc != DP_OK) {
            pthread_mutex_unlock(&pl->load_lock);
            return rc;
        }
        path = found;
    }
    dp_pversion_t *v;
    rc = dp__pversion_load(pl, name, path, &v, err, errlen);
    if (rc != DP_OK) {
        pthread_mutex_unlock(&pl->load_lock);
        return rc;
    }

    pthread_mutex_lock(&pl->lock);
    e = dp__plugins_get_entry_locked(pl, name);
    const char *ver = dp__plugins_intern_locked(pl, v->desc.version);
    if (!e || !ver) {
        pthread_mutex_unlock(&pl->lock);
        pthread_mutex_unlock(&pl->load_lock);
        dp__pversion_unload(v);
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    }
    v->entry = e;
    v->version = ver;
    v->generation = 1;
    v->current = true;
    atomic_init(&v->pins, 1); /* the entry's reference */
    e->current = v;           /* seq_cst: publishes v to pins */
    pthread_mutex_unlock(&pl->lock);
    pthread_mutex_unlock(&pl->load_lock);
    dp__plugins_log(pl, DP_LOG_DEBUG, NULL, name, "loaded plugin %s %s (ABI %u.%u) from %s", name, ver,
                    (unsigned)v->desc.abi_major, (unsigned)v->desc.abi_minor, v->path);
    return DP_OK;
}

/* Loads and checks the file of plugin `name` again as a new version, then
 * swaps it in: the old one drains (or is unloaded at once if no job is in
 * flight on it). Refused, the old version serves on unchanged. */
int dp__plugins_reload_ex(dp_plugins_t *pl, const char *name, dp__reload_info_t *info, char *err, size_t errlen)
{
    if (info)
        memset(info, 0, sizeof(*info));
    if (!pl || !name)
        return dp__seterr(err, errlen, DP_EINVAL, "dp_plugins_reload: no registry or name");
    pthread_mutex_lock(&pl->load_lock);
    pthread_mutex_lock(&pl->lock);
    dp_pentry_t *e = dp__plugins_find_entry_locked(pl, name);
    if (!e || !e->current) {
        pthread_mutex_unlock(&pl->lock);
        pthread_mutex_unlock(&pl->load_lock);
        return dp__seterr(err, errlen, DP_ENOTFOUND,
                          "plugin '%s' is not loaded, so it cannot be reloaded; fix: load it first", name);
    }
    /* The path changes only under load_lock, which we hold, so it can be
     * read after dropping lock. */
    const char *path = e->current->path;
    if (info)
        info->old_version = e->current->version;
    pthread_mutex_unlock(&pl->lock);

    dp_pversion_t *nv;
    int rc = dp__pversion_load(pl, name, path, &nv, err, errlen);
    if (rc != DP_OK) {
        pthread_mutex_unlock(&pl->load_lock);
        return rc;
    }

    pthread_mutex_lock(&pl->lock);
    /* Every type that jobs of live graphs use must still be there, with the
     * callbacks their specs call. The counts change under lock (a graph may
     * be freed meanwhile), and no plugin code runs here. */
    for (size_t i = 0; i < e->nused; i++) {
        const dp_used_type_t *u = &e->used[i];
        if (!u->jobs)
            continue;
        const dp_ptype_t *t = dp__pversion_find_type(nv, u->name);
        const char *missing = !t                            ? "the job type"
                              : (u->run && !t->ops.run)     ? "run"
                              : (u->check && !t->ops.check) ? "check"
                                                            : NULL;
        if (missing) {
            dp__seterr(err, errlen, DP_EPLUGIN,
                       "%s: reload refused: the new version %s of plugin '%s' lacks %s of '%s.%s', "
                       "which jobs use (%u of them); the old version keeps serving; fix: restore it "
                       "in the plugin, or remove those jobs",
                       path, nv->desc.version, name, missing, name, u->name, u->jobs);
            pthread_mutex_unlock(&pl->lock);
            pthread_mutex_unlock(&pl->load_lock);
            dp__pversion_unload(nv);
            return DP_EPLUGIN;
        }
    }
    const char *ver = dp__plugins_intern_locked(pl, nv->desc.version);
    if (!ver) {
        pthread_mutex_unlock(&pl->lock);
        pthread_mutex_unlock(&pl->load_lock);
        dp__pversion_unload(nv);
        return dp__seterr(err, errlen, DP_ENOMEM, "out of memory");
    }
    dp_pversion_t *old = e->current;
    nv->entry = e;
    nv->version = ver;
    nv->generation = old->generation + 1;
    nv->current = true;
    atomic_init(&nv->pins, 1); /* the entry's reference */
    e->current = nv;           /* seq_cst: publishes nv to pins */
    old->current = false;
    /* The entry's reference on old goes; what is left are jobs in flight.
     * A pin that read old as current a moment ago either counted itself
     * in before this (and the job runs on old, as if it had pinned just
     * before the swap) or finds 0 and pins nv under lock (plugin_swap.c,
     * the pins). Acq_rel: at 0 this thread unloads old after every
     * job's use of it. */
    unsigned in_flight = atomic_fetch_sub_explicit(&old->pins, 1, memory_order_acq_rel) - 1;
    const char *old_ver = old->version;
    unsigned old_gen = old->generation;
    if (in_flight) {
        /* Its last unpin takes it off under lock, so after this. */
        old->next = e->draining;
        e->draining = old;
    } else {
        old->next = e->retired;
        e->retired = old;
    }
    if (info) {
        info->old_version = old_ver;
        info->new_version = ver;
        info->old_generation = old_gen;
        info->new_generation = nv->generation;
        info->in_flight = in_flight;
        info->swapped_ns = dp__now_ns();
    }
    pthread_mutex_unlock(&pl->lock);
    pthread_mutex_unlock(&pl->load_lock);
    if (!in_flight)
        dp__pversion_release(old);
    dp__plugins_log(pl, DP_LOG_INFO, NULL, name,
                    "reloaded plugin %s: %s (generation %u) -> %s (generation %u); %u job(s) still "
                    "in flight finish on the old version",
                    name, old_ver, old_gen, ver, nv->generation, in_flight);
    return DP_OK;
}

int dp_plugins_reload(dp_plugins_t *pl, const char *name, char *err, size_t errlen)
{
    return dp__plugins_reload_ex(pl, name, NULL, err, errlen);
}

/* ---- pins --------------------------------------------------------------- */

/* Pins take no lock on their common path (an attempt pins and unpins once
 * each; with the lock that was ~7 % of the workers' time on a 100 000-job
 * run, bench/README.md): the current version is read from its atomic
 * pointer and its count raised only from a count above zero. A count of 0
 * means the version was swapped out and its last job is unloading it (its
 * struct stays: plugin_int.h), so the pin takes lock and the current
 * version then, whose count holds the entry's reference and cannot be 0
 * under lock. The last unpin of an old version takes lock only to move it
 * to the retired list. */
dp_pversion_t *dp__pversion_pin(dp_plugins_t *pl, dp_pentry_t *e)
{
    /* Acquire: the version's fields, written before its publication. */
    dp_pversion_t *v = atomic_load_explicit(&e->current, memory_order_acquire);
    if (!v)
        return NULL;
    unsigned n = atomic_load_explicit(&v->pins, memory_order_relaxed);
    /* Relaxed on success: v was read through the acquire above; on
     * failure n is only looked at again. */
    while (n)
        if (atomic_compare_exchange_weak_explicit(&v->pins, &n, n + 1, memory_order_relaxed, memory_order_relaxed))
            return v;
    pthread_mutex_lock(&pl->lock);
    v = e->current;
    if (v)
        atomic_fetch_add_explicit(&v->pins, 1, memory_order_relaxed);
    pthread_mutex_unlock(&pl->lock);
    return v;
}

/* Drops a pin; unloads the version if it was the last pin of an old one
 * (the current one's count keeps the entry's reference). This may run fini
 * on a worker thread: plugins are told fini runs "after the last job using
 * this copy has ended", on whatever thread that was. */
void dp__pversion_unpin(dp_plugins_t *pl, dp_pversion_t *v)
{
    /* Acq_rel: the thread that unloads sees every job's use of v. */
    if (atomic_fetch_sub_explicit(&v->pins, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_lock(&pl->lock);
    /* The swap that dropped the entry's reference put v on the draining
     * list under lock before this thread could take it. */
    dp_pversion_t **pp = &v->entry->draining;
    while (*pp && *pp != v)
        pp = &(*pp)->next;
    if (*pp)
        *pp = v->next;
    v->next = v->entry->retired;
    v->entry->retired = v;
    pthread_mutex_unlock(&pl->lock);
    dp__plugins_log(pl, DP_LOG_DEBUG, NULL, v->entry->name,
                    "unloading plugin %s %s (generation %u): its last job ended", v->entry->name, v->version,
                    v->generation);
    dp__pversion_release(v);
}

/* ---- what jobs use -------------------------------------------------------- */

/* Counts n more jobs of `type` with these callbacks. Caller holds load_lock
 * (so that no reload swaps versions between the type check and this) and
 * lock. */
int dp__pentry_note_used_locked(dp_pentry_t *e, const char *type, unsigned n, bool run, bool check)
{
    int rc = DP_OK;
    size_t i;
    for (i = 0; i < e->nused; i++)
        if (strcmp(e->used[i].name, type) == 0)
            break;
    if (i == e->nused) {
        dp_used_type_t *u = realloc(e->used, (e->nused + 1) * sizeof(*u));
        char *name = strdup(type);
        if (u)
            e->used = u;
        if (!u || !name) {
            free(name);
            rc = DP_ENOMEM;
            goto out;
        }
        e->used[i] = (dp_used_type_t){.name = name};
        e->nused++;
    }
    e->used[i].jobs += n;
    e->used[i].run += run ? n : 0;
    e->used[i].check += check ? n : 0;
out:
    return rc;
}

/* Drops n counts of dp__pentry_note_used_locked. Caller holds lock. */
void dp__pentry_unnote_used_locked(dp_pentry_t *e, const char *type, unsigned n, bool run, bool check)
{
    for (size_t i = 0; i < e->nused; i++) {
        dp_used_type_t *u = &e->used[i];
        if (strcmp(u->name, type) == 0) {
            unsigned k = n < u->jobs ? n : u->jobs;
            u->jobs -= k;
            u->run -= run ? (k < u->run ? k : u->run) : 0;
            u->check -= check ? (k < u->check ? k : u->check) : 0;
            break;
        }
    }
}
