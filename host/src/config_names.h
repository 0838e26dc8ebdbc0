/* config_names.h - a workflow's jobs as read (kept by the workflow; filled
 * by config_job.c) and their names (config_names.c): the index from name to
 * job, made before any job is read, each dependency resolved to a job index
 * as it is read, then duplicate names and dependencies on no job reported.
 * Private to the config_*.c files. */
#ifndef DP_CONFIG_NAMES_H
#define DP_CONFIG_NAMES_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_problems.h"
#include "daggerpool/daggerpool.h"
#include "strarena.h"

/* A job as read. Kept small: a 100 000-job file has 100 000 of them, made
 * while libconfig's tree is still in memory. */
typedef struct dp__wf_job {
    char *name;       /* in jobs->names */
    const char *type; /* interned in jobs->types */
    const char *file; /* interned in the workflow's file names */
    int line;
    uint32_t ndeps;
    size_t dep_off; /* its dependencies: jobs->dep_ids[dep_off .. dep_off + ndeps) */
    dp_params_t *params;
    /* Scheduling settings (name/run/check set at build): NULL for
     * jobs->spec0, the defaults of dp_job_spec_init, which most jobs have;
     * else one of jobs->specs, shared by jobs in a row with equal settings. */
    const dp_job_spec_t *spec;
} dp__wf_job_t;

/* A slot of the job name index. A million dependencies are looked up in
 * it, in no order: the name is in the slot, and part of the hash, so that
 * a probe touches the slot and the name it finds, not the job too. */
typedef struct dp__name_slot {
    const char *name; /* NULL: free */
    uint32_t id;      /* index in jobs->v */
    uint32_t tag;     /* the hash's high bits */
} dp__name_slot_t;

/* The jobs of a workflow, in file order (those that could be read), owned
 * by the workflow. Zeroed, then dp__jobs_init. */
typedef struct dp__jobs {
    dp__wf_job_t *v;
    size_t n;
    char **types; /* distinct job types; jobs point at them */
    size_t ntypes;
    dp_strarena_t names; /* the jobs' names, many to a malloc */
    uint32_t *dep_ids;   /* every job's dependencies, by index in v */
    size_t ndep_ids, dep_cap;
    dp__name_slot_t *index; /* job names: open addressing */
    size_t index_mask;      /* slots - 1 (a power of two) */
    dp_job_spec_t spec0;    /* dp_job_spec_init's */
    dp_job_spec_t **specs;  /* the other settings, one per distinct run */
    size_t nspecs;
    /* Jobs not to build (by index): a problem in their params, which the
     * type would misjudge. NULL: none. */
    uint8_t *unbuildable;
    /* The top-level pools (read before the jobs, which name them): names
     * (NULL-terminated, for "did you mean"), slots, where each was set. */
    char **pool_names;
    unsigned *pool_slots;
    size_t npools;
} dp__jobs_t;

/* The job named name (the first of that name) by index, or -1. */
long dp__jobs_find(const dp__jobs_t *jobs, const char *name);

/* A dependency on a name that is no job's (yet: reported by
 * dp__jobs_check_names). */
typedef struct dp__wf_unknown {
    uint32_t job;     /* index in jobs->v */
    const char *name; /* libconfig's: valid only while the file is read */
    const char *file;
    int line;
} dp__wf_unknown_t;

/* Reading the jobs list: what is carried from one job to the next. */
typedef struct dp__job_reader {
    dp__cfg_reader_t *rd;
    dp__jobs_t *jobs;
    bool dropped;   /* a job could not be read (no usable name) */
    bool dups;      /* two jobs have one name */
    size_t next;    /* the index the next readable job gets */
    uint32_t *mark; /* by job index: the last job + 1 whose depends_on named it */
    dp__wf_unknown_t *unknown;
    size_t nunknown, unknown_cap;
    const dp_job_spec_t *last_spec; /* the last job's settings, if not spec0 */
    size_t specs_cap;
} dp__job_reader_t;

/* A job group's name setting and name, or why the job cannot be read (and
 * is dropped): one answer for the index and for reading the job. */
typedef enum { DP__JN_OK, DP__JN_NOT_GROUP, DP__JN_NO_NAME, DP__JN_NOT_STRING, DP__JN_EMPTY } dp__job_name_t;

dp__job_name_t dp__job_name_read(const config_setting_t *js, const config_setting_t **ns, const char **name);

/* Before the jobs are read: every readable job of list (n members) gets its
 * index in jobs->v, its name (copied), file and line, and its place in the
 * name index, so that each dependency is resolved as it is read. Reports
 * nothing: reading the jobs reports, in file order. */
void dp__jobs_index(dp__job_reader_t *jr, const config_setting_t *list, size_t n);

/* Job k's depends_on s: each name resolved to its job's index (the names
 * are indexed before any job is read), repeats and the job itself refused;
 * a name that is no job's is kept for dp__jobs_check_names. */
void dp__job_deps_read(dp__job_reader_t *jr, dp__wf_job_t *job, uint32_t k, const config_setting_t *s);

/* Duplicate names, then unknown dependencies with the nearest known name. */
void dp__jobs_check_names(dp__job_reader_t *jr);

#endif /* DP_CONFIG_NAMES_H */
