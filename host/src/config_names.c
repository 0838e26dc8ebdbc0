/*
 * config_names.c - the names of a workflow's jobs (config_names.h): an index
 * from name to job, made before any job is read, so that each dependency
 * resolves to a job index as it is read; then the reports of duplicate
 * names and of dependencies on no job, with the nearest name.
 *
 * DESIGN.md: names are resolved to integer ids once. A 100 000-job file has
 * about a million dependencies: the index is open addressing over FNV-1a
 * (hash.h), and a job's names are hashed and their slots asked for ahead.
 */
#include "config_names.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "util.h"

/* Job names: in the workflow's string arena, freed with the workflow. */
static char *copy_name(dp__job_reader_t *jr, const char *name)
{
    char *out = dp__strarena_copy(&jr->jobs->names, name);
    if (!out)
        jr->rd->oom = true;
    return out;
}

/* The job named name (the first of that name), or -1; h: its hash. */
static long index_find_h(const dp__jobs_t *jobs, const char *name, uint64_t h)
{
    if (!jobs->index)
        return -1;
    for (size_t i = h & jobs->index_mask;; i = (i + 1) & jobs->index_mask) {
        const dp__name_slot_t *sl = &jobs->index[i];
        if (!sl->name)
            return -1;
        if (sl->tag == (uint32_t)(h >> 32) && strcmp(sl->name, name) == 0)
            return (long)sl->id;
    }
}

long dp__jobs_find(const dp__jobs_t *jobs, const char *name)
{
    return index_find_h(jobs, name, dp__hash_fnv1a(name));
}

dp__job_name_t dp__job_name_read(const config_setting_t *js, const config_setting_t **ns, const char **name)
{
    *ns = NULL;
    *name = NULL;
    if (config_setting_type(js) != CONFIG_TYPE_GROUP)
        return DP__JN_NOT_GROUP;
    if (!(*ns = config_setting_get_member(js, "name")))
        return DP__JN_NO_NAME;
    if (config_setting_type(*ns) != CONFIG_TYPE_STRING)
        return DP__JN_NOT_STRING;
    *name = config_setting_get_string(*ns);
    return **name ? DP__JN_OK : DP__JN_EMPTY;
}

void dp__jobs_index(dp__job_reader_t *jr, const config_setting_t *list, size_t n)
{
    dp__cfg_reader_t *rd = jr->rd;
    dp__jobs_t *jobs = jr->jobs;
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    if (!(jobs->index = calloc(cap, sizeof *jobs->index))) {
        rd->oom = true;
        return;
    }
    jobs->index_mask = cap - 1;
    for (size_t i = 0; i < n && !rd->oom; i++) {
        const config_setting_t *js = config_setting_get_elem(list, (unsigned)i), *ns;
        const char *name;
        if (dp__job_name_read(js, &ns, &name) != DP__JN_OK)
            continue;
        dp__wf_job_t *job = &jobs->v[jobs->n];
        job->file = dp__cfg_file(rd, js);
        job->line = dp__cfg_line(rd, js);
        if (!(job->name = copy_name(jr, name)))
            return;
        uint32_t k = (uint32_t)jobs->n++;
        uint64_t hash = dp__hash_fnv1a(name);
        for (size_t h = hash & jobs->index_mask;; h = (h + 1) & jobs->index_mask) {
            dp__name_slot_t *sl = &jobs->index[h];
            if (!sl->name) {
                *sl = (dp__name_slot_t){.name = job->name, .id = k, .tag = (uint32_t)(hash >> 32)};
                break;
            }
            if (sl->tag == (uint32_t)(hash >> 32) && strcmp(sl->name, name) == 0) {
                jr->dups = true; /* the first one stays in the index */
                break;
            }
        }
    }
}

/* Names in a job's depends_on that name no job (yet): checked for repeats
 * among themselves (a hash for a long list rather than a comparison with
 * each) and reported by dp__jobs_check_names. */
typedef struct dep_set {
    uint32_t *slot; /* index in jr->unknown + 1 */
    size_t cap;
} dep_set_t;

/* True if the job's unknown names, jr->unknown[from .. at), have name; else
 * false, and name, to be jr->unknown[at], is added to the set. */
static bool unknown_seen(dp__job_reader_t *jr, dep_set_t *set, size_t from, size_t at, const char *name)
{
    if (!set->slot) {
        for (size_t k = from; k < at; k++)
            if (strcmp(jr->unknown[k].name, name) == 0)
                return true;
        return false;
    }
    size_t mask = set->cap - 1;
    for (size_t i = dp__hash_fnv1a(name) & mask;; i = (i + 1) & mask) {
        if (!set->slot[i]) {
            set->slot[i] = (uint32_t)(at - from) + 1;
            return false;
        }
        if (strcmp(jr->unknown[from + set->slot[i] - 1].name, name) == 0)
            return true;
    }
}

static bool push_dep(dp__job_reader_t *jr, uint32_t id)
{
    dp__jobs_t *jobs = jr->jobs;
    if (jobs->ndep_ids == jobs->dep_cap) {
        size_t ncap = jobs->dep_cap ? jobs->dep_cap * 2 : 1024;
        uint32_t *nd = realloc(jobs->dep_ids, ncap * sizeof *nd);
        if (!nd) {
            jr->rd->oom = true;
            return false;
        }
        jobs->dep_ids = nd;
        jobs->dep_cap = ncap;
    }
    jobs->dep_ids[jobs->ndep_ids++] = id;
    return true;
}

/* A name that is no job's is reported by dp__jobs_check_names, after the
 * duplicate names. */
void dp__job_deps_read(dp__job_reader_t *jr, dp__wf_job_t *job, uint32_t k, const config_setting_t *s)
{
    dp__cfg_reader_t *rd = jr->rd;
    dp__jobs_t *jobs = jr->jobs;
    int t = config_setting_type(s);
    size_t n = t == CONFIG_TYPE_STRING
                   ? 1
                   : (size_t)(t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST ? config_setting_length(s) : 0);
    bool strings = t == CONFIG_TYPE_STRING || t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST;
    /* The names' hashes, and their slots asked for ahead (a usual list has
     * a few names, each in a slot no cache holds): the lookups below then
     * wait for memory once, not once per name. */
    enum { AHEAD = 32 };
    uint64_t hashes[AHEAD];
    for (size_t i = 0; strings && i < n; i++) {
        const config_setting_t *e = t == CONFIG_TYPE_STRING ? s : config_setting_get_elem(s, (unsigned)i);
        strings = config_setting_type(e) == CONFIG_TYPE_STRING;
        if (strings && i < AHEAD) {
            hashes[i] = dp__hash_fnv1a(config_setting_get_string(e));
            __builtin_prefetch(&jobs->index[hashes[i] & jobs->index_mask]);
        }
    }
    if (!strings) { /* dp__cfg_string_list says what is wrong, as it always did */
        char what[320];
        const config_setting_t **items = NULL;
        size_t m = 0;
        snprintf(what, sizeof what, "'depends_on' of job '%s'", job->name);
        if (dp__cfg_string_list(rd, s, what, true, &items, &m))
            free(items); /* cannot happen: it refuses what the scan above refused */
        return;
    }
    long self = dp__jobs_find(jobs, job->name); /* the first job of this name */
    size_t from = jr->nunknown;
    dep_set_t seen = {0};
    job->dep_off = jobs->ndep_ids;
    for (size_t i = 0; i < n && !rd->oom; i++) {
        const config_setting_t *e = t == CONFIG_TYPE_STRING ? s : config_setting_get_elem(s, (unsigned)i);
        const char *dep = config_setting_get_string(e);
        if (!dp__cfg_utf8_ok(dep)) {
            char lead[320];
            snprintf(lead, sizeof lead, "job '%s' depends on", job->name);
            dp__cfg_not_utf8(rd, e, lead, dep);
            continue;
        }
        long id = index_find_h(jobs, dep, i < AHEAD ? hashes[i] : dp__hash_fnv1a(dep));
        if (id >= 0 && id == self) {
            DP__CFG_PROBLEM(rd, e, "job '%s' depends on itself; remove \"%s\" from its depends_on", job->name,
                            job->name);
            continue;
        }
        if (id >= 0) {
            /* jr->mark[id] is the last job + 1 that listed id. */
            if (jr->mark[id] == k + 1) {
                DP__CFG_PROBLEM(rd, e, "job '%s' lists '%s' twice in depends_on; remove one", job->name, dep);
                continue;
            }
            jr->mark[id] = k + 1;
            if (push_dep(jr, (uint32_t)id))
                job->ndeps++;
            continue;
        }
        if (!seen.slot && n > 16 && jr->nunknown - from >= 16) {
            for (seen.cap = 64; seen.cap < 2 * n; seen.cap *= 2)
                ;
            if (!(seen.slot = calloc(seen.cap, sizeof *seen.slot))) {
                rd->oom = true;
                break;
            }
            for (size_t u = from; u < jr->nunknown; u++)
                unknown_seen(jr, &seen, from, u, jr->unknown[u].name); /* fills the set */
        }
        if (unknown_seen(jr, &seen, from, jr->nunknown, dep)) {
            DP__CFG_PROBLEM(rd, e, "job '%s' lists '%s' twice in depends_on; remove one", job->name, dep);
            continue;
        }
        if (jr->nunknown == jr->unknown_cap) {
            size_t ncap = jr->unknown_cap ? jr->unknown_cap * 2 : 16;
            dp__wf_unknown_t *nu = realloc(jr->unknown, ncap * sizeof *nu);
            if (!nu) {
                rd->oom = true;
                break;
            }
            jr->unknown = nu;
            jr->unknown_cap = ncap;
        }
        const config_setting_t *at = dp__cfg_line(rd, e) ? e : s;
        jr->unknown[jr->nunknown++] = (dp__wf_unknown_t){
            .job = k, .name = dep, .file = dp__cfg_file(rd, at), .line = dp__cfg_line(rd, at)};
    }
    free(seen.slot);
}

/* Stable: equal names keep their order in the file. */
static int cmp_job_name(const void *a, const void *b)
{
    const dp__wf_job_t *const *x = a, *const *y = b;
    int c = strcmp((*x)->name, (*y)->name);
    return c ? c : (*x < *y ? -1 : *x > *y);
}

/* Duplicate names, in name order (the first in the file is the original). */
static void report_duplicates(dp__job_reader_t *jr)
{
    const dp__jobs_t *jobs = jr->jobs;
    const dp__wf_job_t **sorted = malloc(jobs->n * sizeof *sorted);
    if (!sorted) {
        jr->rd->oom = true;
        return;
    }
    for (size_t i = 0; i < jobs->n; i++)
        sorted[i] = &jobs->v[i];
    qsort(sorted, jobs->n, sizeof *sorted, cmp_job_name);
    for (size_t i = 1; i < jobs->n; i++)
        if (strcmp(sorted[i]->name, sorted[i - 1]->name) == 0) {
            size_t first = i - 1;
            while (first > 0 && strcmp(sorted[first - 1]->name, sorted[i]->name) == 0)
                first--;
            dp__problem(jr->rd->pr, sorted[i]->file, sorted[i]->line,
                        "duplicate job name '%s' (first defined at %s:%d); job names must be unique: rename one",
                        sorted[i]->name, sorted[first]->file, sorted[first]->line);
        }
    free(sorted);
}

/* The names are in the index already and every dependency that could be
 * resolved was: what is left is reporting. */
void dp__jobs_check_names(dp__job_reader_t *jr)
{
    dp__cfg_reader_t *rd = jr->rd;
    const dp__jobs_t *jobs = jr->jobs;
    if (jr->dups)
        report_duplicates(jr);
    const char **names = NULL; /* for suggestions, made on first need */
    for (size_t u = 0; u < jr->nunknown && !rd->oom; u++) {
        const dp__wf_unknown_t *un = &jr->unknown[u];
        const dp__wf_job_t *job = &jobs->v[un->job];
        /* The nearest name is a pass over all of them: only for a problem
         * that will be listed, not for those counted in "... and N more". */
        const char *near = NULL;
        if (dp__problems_listing(rd->pr)) {
            if (!names) {
                if (!(names = malloc((jobs->n + 1) * sizeof *names))) {
                    rd->oom = true;
                    break;
                }
                for (size_t k = 0; k < jobs->n; k++)
                    names[k] = jobs->v[k].name;
                names[jobs->n] = NULL;
            }
            near = dp__nearest_word(un->name, names);
        }
        if (near)
            dp__problem(rd->pr, un->file, un->line,
                        "job '%s' depends on '%s', which is not a job of this workflow; did you mean '%s'?", job->name,
                        un->name, near);
        else
            dp__problem(rd->pr, un->file, un->line,
                        "job '%s' depends on '%s', which is not a job of this workflow; add a job named '%s' or "
                        "fix the name",
                        job->name, un->name, un->name);
    }
    free(names);
}
