/* plugin_int.h - the structs the plugin subsystem's files share: the
 * registry, its entries, versions and job types, and the context of one
 * plugin call. Types only: each file's functions are in its own header
 * (plugin.h lists the files). Private to plugin_*.c and host_api.c.
 *
 * Versions. Each load of a plugin is a version: its own dlopen handle (of a
 * private copy of the file), its checked descriptor and job types, a
 * generation number and a count of the jobs pinned to it. A plugin name
 * (an entry) has one current version and possibly older ones that still
 * have jobs in flight ("draining"). A job pins the current version when an
 * attempt starts and unpins it when the attempt ends; a version that is no
 * longer current is unloaded (fini, dlclose) when its last job unpins it.
 * Pins take no lock (plugin_swap.c says how): a version's count is atomic,
 * and a version once published stays allocated (unloaded, on its entry's
 * `retired` list) until the registry is destroyed, so that a pin that read
 * an entry's current version just before a swap may still look at its
 * count.
 *
 * Locks. Two mutexes per registry, taken in this order: load_lock, then
 * lock. Never the other way round, and nothing else is taken under lock.
 *   load_lock serialises loads, reloads, scans and the adding of plugin
 *     jobs: a plugin's entry point and init run under it, and so do the
 *     create and destroy of the add-time params check.
 *   lock guards the fields labelled (lock) below. No plugin code runs
 *     while it is held.
 * fini runs under load_lock only when a scan drops its probe (a version
 * refused while loading never ran init, so it gets no fini; its dlclose runs
 * under load_lock). Every other version is unloaded (fini, dlclose) with no
 * registry lock held, on the thread that drops its last use: the one whose
 * job unpins the last pin of an old version (a pool worker, or whoever
 * frees the graph), the one whose reload swapped it out with no job in
 * flight or refused the candidate (after both locks are released), or the
 * one that drops the registry's last reference.
 *
 * Field labels: (lock), (load_lock), (set before publication: written
 * before the object is reachable by other threads, then never changed).
 */
#ifndef DP_PLUGIN_INT_H
#define DP_PLUGIN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daggerpool/daggerpool.h"
#include "daggerpool/plugin.h"

/* One job type of a version. (set before publication) */
typedef struct dp_ptype {
    const char *name; /* points into the plugin (valid while loaded) */
    dp_job_type ops;  /* the plugin's struct, copied into the host's size */
} dp_ptype_t;

typedef struct dp_pentry dp_pentry_t;

/* One loaded copy of a plugin. The loader fills everything but the fields
 * marked otherwise before the version is published (made an entry's
 * current, under lock); from then on those fields never change. */
typedef struct dp_pversion {
    dp_pentry_t *entry; /* NULL for a scan probe (set before publication) */
    void *handle;
    int fd;              /* the private copy behind the handle (a memfd, or an
                                 * unlinked temporary file): isolated runners load it */
    dp_plugin_desc desc; /* copied into the host's size, zero-filled */
    dp_ptype_t *types;
    size_t ntypes;
    const char **type_names; /* NULL-terminated, for dp_plugin_info_t */
    char *path;              /* the file it was loaded from */
    const char *version;     /* interned copy of desc.version; NULL: a scan probe
                                 * (set before publication) */
    unsigned generation;     /* (set before publication) */
    uint64_t loaded_at_ms;
    /* Attempts pinned to it, plus one while it is its entry's current
     * version (the entry's own reference): atomic, changed without lock by
     * pins (plugin_swap.c). 0: unloaded, or being unloaded. */
    _Atomic unsigned pins;
    bool current;             /* its entry's current version (lock) */
    bool inited;              /* init succeeded: call fini before dlclose */
    struct dp_pversion *next; /* in the entry's draining or retired list (lock) */
} dp_pversion_t;

/* A type that jobs of live graphs use, and which callbacks their specs call:
 * a reload must keep them. Counted per job (dp_plugins_add_job adds, the
 * job's free drops), so a type no graph references any more may go. */
typedef struct dp_used_type {
    char *name;          /* (set before publication) */
    unsigned jobs;       /* jobs of this type (lock) */
    unsigned run, check; /* of those, jobs whose spec calls run / check (lock) */
} dp_used_type_t;

/* A plugin name. Entries are never removed before the registry is
 * destroyed, so a pointer to one stays valid as long as the registry. */
struct dp_pentry {
    char *name; /* (set before publication) */
    /* NULL until loaded. Written under load_lock and lock, so either lock
     * is enough to read it; atomic: a pin reads it with neither. */
    dp_pversion_t *_Atomic current;
    dp_pversion_t *draining; /* old versions with jobs in flight (lock) */
    /* Old versions unloaded: their structs only (the code, the types and
     * the path are gone), kept for pins that read them as current a moment
     * before a swap; freed with the registry. (lock) */
    dp_pversion_t *retired;
    dp_used_type_t *used; /* (lock) */
    size_t nused;         /* (lock) */
    dp_pentry_t *next;    /* sorted by name (lock) */
};

/* The registry. Reference counted: the owner holds one reference, and
 * every job added with dp_plugins_add_job holds one until the graph frees
 * it. So graphs may outlive dp_plugins_free, and the strings results point
 * at (interned version strings, plugin names) stay valid while any graph of
 * this registry is alive. */
struct dp_plugins {
    pthread_mutex_t load_lock;
    pthread_mutex_t lock;
    unsigned refs;                 /* owner + one per plugin job (lock) */
    char **paths;                  /* search path (load_lock) */
    size_t npaths;                 /* (load_lock) */
    bool allow_insecure;           /* (lock) */
    dp_log_cb log;                 /* (lock) */
    void *log_user;                /* (lock) */
    dp_log_level_t log_level;      /* (lock) */
    dp_store_t *store;             /* (lock) */
    dp_pentry_t *entries;          /* (lock) */
    char **interned;               /* never freed before the registry (lock) */
    size_t ninterned, capinterned; /* (lock) */
};

/* The handle behind every host API call of an in-process plugin: one
 * create, run, check or end. The job adapter (plugin_job.c) makes one on
 * its stack per call; host_api.c reads and fills it. Owned by the thread
 * making the call. */
struct dp_plugin_ctx {
    dp_plugins_t *pl;
    dp_pversion_t *ver;
    dp_job_t *job; /* NULL while checking params at add time */
    const char *job_name;
    char *error; /* set_error's message (malloc'd); the caller frees it */
    unsigned error_flags;
};

#endif /* DP_PLUGIN_INT_H */
