/*
 * config_job.c - reading a workflow's jobs (config_job.h), one job at a
 * time, through one table of a job's keys.
 *
 * A row of job_fields says what a key holds (its kind), where the value
 * goes in the job's dp_job_spec_t and how it is checked; a group's row
 * lists its own fields. The table gives the keys a job may have (and their
 * order in "known keys: ..."), the keys `defaults` may have (all but those
 * each job sets itself), the order in which a job's problems are listed,
 * and what is read: adding a scheduling key is one row. The name, type,
 * params and depends_on have kinds of their own: they are not settings of
 * the spec.
 *
 * A job's key is the job's own, else the one in `defaults`; a group's keys
 * one by one (the job's backoff.max, else the defaults' backoff.max). A
 * default's value is checked for each job that takes it, and named as that
 * job's in the message.
 */
#include "config_job.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* The table                                                                 */
/* ------------------------------------------------------------------------ */

/* What a key holds, and so how it is read and checked. */
typedef enum {
    F_NAME,       /* the job's name: read first, and a job without one is dropped */
    F_TYPE,       /* "PLUGIN.TYPE" */
    F_PARAMS,     /* a group for the type: the job's keys, then the defaults' it lacks */
    F_DEPENDS_ON, /* names of jobs (config_names.c) */
    /* The settings of the spec, from here on: */
    F_DURATION, /* uint64_t milliseconds: an integer, or a string such as "30s" */
    F_UINT,     /* an integer in [min, max] */
    F_FLOAT,    /* a number in [min, max] */
    F_SIZE,     /* uint64_t bytes: an integer, or a string such as "512MiB" */
    F_CHOICE,   /* one of the words of choices, stored as its value (an int) */
    F_GROUP,    /* a group of the fields of sub */
    F_POOL,     /* the name of one of the top-level pools: a const char * to the workflow's copy */
    F_INT,      /* a signed integer in [min, max] */
    F_BOOL,     /* true or false, stored as a bool */
} field_kind_t;

typedef struct field_choice {
    const char *word;
    int value;
} field_choice_t;

typedef struct job_field job_field_t;

/* A job's settings as read so far, for the checks that span fields. */
typedef struct job_ctx job_ctx_t;

struct job_field {
    const char *key;
    field_kind_t kind;
    bool per_job;                  /* each job sets its own: no default */
    size_t off, size;              /* the settings: where it goes in dp_job_spec_t */
    double min, max;               /* F_UINT, F_FLOAT */
    const job_field_t *sub;        /* F_GROUP: its fields, up to a NULL key */
    const field_choice_t *choices; /* F_CHOICE: up to a NULL word */
    const char *expect;            /* F_CHOICE: the words and what they mean */
    const char *example;           /* F_GROUP, F_PARAMS: one written right, in a job */
    const char *default_example;   /* the same in `defaults` */
    /* F_GROUP: a rule across fields, checked once the group was read when
     * the job or the defaults have it (jg, dg: those that are groups). */
    void (*check)(job_ctx_t *c, const config_setting_t *jg, const config_setting_t *dg);
};

#define SPEC(member) .off = offsetof(dp_job_spec_t, member), .size = sizeof(((dp_job_spec_t *)0)->member)

static void limits_need_process(job_ctx_t *c, const config_setting_t *jg, const config_setting_t *dg);
static void readiness_rules(job_ctx_t *c, const config_setting_t *jg, const config_setting_t *dg);
static void deadline_vs_timeout(job_ctx_t *c, const config_setting_t *js, const config_setting_t *ds);

static const job_field_t backoff_fields[] = {
    {.key = "initial", .kind = F_DURATION, SPEC(backoff.initial_ms)},
    {.key = "factor", .kind = F_FLOAT, SPEC(backoff.factor), .min = 1.0, .max = 1000.0},
    {.key = "max", .kind = F_DURATION, SPEC(backoff.max_ms)},
    {.key = "jitter", .kind = F_FLOAT, SPEC(backoff.jitter), .min = 0.0, .max = 1.0},
    {.key = NULL},
};

static const job_field_t readiness_fields[] = {
    {.key = "period", .kind = F_DURATION, SPEC(readiness.period_ms)},
    {.key = "probe_timeout", .kind = F_DURATION, SPEC(readiness.probe_timeout_ms)},
    {.key = "timeout", .kind = F_DURATION, SPEC(readiness.timeout_ms)},
    /* Like Kubernetes probes (dp_readiness_ext_t). */
    {.key = "initial_delay", .kind = F_DURATION, SPEC(readiness_ext.initial_delay_ms)},
    {.key = "success_threshold", .kind = F_UINT, SPEC(readiness_ext.success_threshold), .min = 1, .max = 1000000},
    {.key = "failure_threshold", .kind = F_UINT, SPEC(readiness_ext.failure_threshold), .min = 1, .max = 1000000},
    {.key = "backoff", .kind = F_FLOAT, SPEC(readiness_ext.backoff), .min = 1.0, .max = 1000.0},
    {.key = "max_period", .kind = F_DURATION, SPEC(readiness_ext.max_period_ms)},
    {.key = NULL},
};

/* docs/isolation.md */
static const job_field_t limits_fields[] = {
    {.key = "cpu", .kind = F_DURATION, SPEC(limits.cpu_ms)},
    {.key = "memory", .kind = F_SIZE, SPEC(limits.memory_bytes)},
    {.key = "open_files", .kind = F_UINT, SPEC(limits.open_files), .min = 16, .max = 1048576},
    {.key = NULL},
};

/* README.md, "Trigger rules and final jobs" */
static const field_choice_t run_ifs[] = {
    {"all_success", DP_RUN_IF_ALL_SUCCESS},
    {"all_done", DP_RUN_IF_ALL_DONE},
    {"any_failed", DP_RUN_IF_ANY_FAILED},
    {NULL, 0},
};

static const field_choice_t isolations[] = {
    {"process", DP_ISOLATION_PROCESS},
    {"none", DP_ISOLATION_NONE},
    {NULL, 0},
};

/* A job's keys, in the order a job's problems are listed: those of kinds
 * before F_DURATION first (read_job reads them for every job), then the
 * settings of the spec (read only for a job that, or whose defaults, has
 * one). */
static const job_field_t job_fields[] = {
    {.key = "name", .kind = F_NAME, .per_job = true},
    {.key = "type", .kind = F_TYPE},
    {.key = "params",
     .kind = F_PARAMS,
     .example = "params = { duration = \"2s\"; }",
     .default_example = "params = { env = { LANG = \"C\"; }; }"},
    {.key = "depends_on", .kind = F_DEPENDS_ON, .per_job = true},
    {.key = "timeout", .kind = F_DURATION, SPEC(timeout_ms)},
    {.key = "retries", .kind = F_UINT, SPEC(retries), .min = 0, .max = 1000000},
    {.key = "backoff",
     .kind = F_GROUP,
     .sub = backoff_fields,
     .example = "backoff = { initial = \"1s\"; factor = 2.0; max = \"30s\"; }",
     .default_example = "backoff = { initial = \"1s\"; }"},
    {.key = "readiness",
     .kind = F_GROUP,
     .sub = readiness_fields,
     .example = "readiness = { period = \"5s\"; timeout = \"5m\"; }",
     .default_example = "readiness = { period = \"5s\"; }",
     .check = readiness_rules},
    {.key = "isolation",
     .kind = F_CHOICE,
     SPEC(isolation),
     .choices = isolations,
     .expect = "\"process\" (a child process per attempt) or \"none\" (in the host's process, the default)"},
    {.key = "limits",
     .kind = F_GROUP,
     .sub = limits_fields,
     .example = "limits = { cpu = \"10s\"; memory = \"512MiB\"; open_files = 256; }",
     .default_example = "limits = { memory = \"512MiB\"; }",
     .check = limits_need_process},
    /* After timeout, which its check reads. */
    {.key = "deadline", .kind = F_DURATION, SPEC(deadline_ms), .check = deadline_vs_timeout},
    /* Scheduling (DESIGN.md "Scheduling keys"); pool_slots is checked
     * against the pool's slots once the job is read (check_pool). */
    {.key = "pool", .kind = F_POOL, SPEC(pool)},
    {.key = "pool_slots", .kind = F_UINT, SPEC(pool_slots), .min = 1, .max = 1000000},
    {.key = "priority", .kind = F_INT, SPEC(priority), .min = -1000000, .max = 1000000},
    /* Trigger rules: run_if belongs to each job (a default would give
     * every root one, which validate refuses). */
    {.key = "run_if",
     .kind = F_CHOICE,
     .per_job = true,
     SPEC(run_if),
     .choices = run_ifs,
     .expect = "\"all_success\" (the default), \"all_done\" (once its dependencies ended, whatever their "
               "status) or \"any_failed\" (once they ended, if one failed)"},
    {.key = "continue_on_failure", .kind = F_BOOL, SPEC(continue_on_failure)},
    {.key = "cleanup_timeout", .kind = F_DURATION, SPEC(cleanup_timeout_ms)},
    {.key = NULL},
};

#define NFIELDS (sizeof job_fields / sizeof job_fields[0] - 1)

/* A choice is stored as an int: the enums of the spec that are choices. */
_Static_assert(sizeof(dp_isolation_t) == sizeof(int), "isolation is stored as an int");
_Static_assert(sizeof(dp_run_if_t) == sizeof(int), "run_if is stored as an int");

/* The keys of fields (up to a NULL key) into keys, NULL-terminated (room
 * for NFIELDS + 1); those a default may be given for only, if defaults. */
static const char *const *field_keys(const job_field_t *fields, bool defaults, const char **keys)
{
    size_t n = 0;
    for (const job_field_t *f = fields; f->key; f++)
        if (!defaults || !f->per_job)
            keys[n++] = f->key;
    keys[n] = NULL;
    return keys;
}

/* ------------------------------------------------------------------------ */
/* A job's keys                                                              */
/* ------------------------------------------------------------------------ */

/* A job's (or the defaults') settings by row of job_fields: one pass over
 * the group's members instead of a lookup (a linear scan) per key. */
typedef struct slots {
    const config_setting_t *s[NFIELDS];
} slots_t;

/* Fills sl from group g; false if g has a key that is no row's. */
static bool fill_slots(const config_setting_t *g, slots_t *sl)
{
    memset(sl, 0, sizeof *sl);
    bool known = true;
    int n = g ? config_setting_length(g) : 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *key = config_setting_name(m);
        size_t k = 0;
        /* The first letter before strcmp: ten keys, a million members. */
        while (k < NFIELDS && (key[0] != job_fields[k].key[0] || strcmp(key, job_fields[k].key) != 0))
            k++;
        if (k < NFIELDS)
            sl->s[k] = m;
        else
            known = false;
    }
    return known;
}

/* Whether sl has any setting of the spec: most jobs have none, and no
 * defaults, and share spec0 without reading any. */
static bool has_settings(const slots_t *sl)
{
    for (size_t k = 0; k < NFIELDS; k++)
        if (job_fields[k].kind >= F_DURATION && sl->s[k])
            return true;
    return false;
}

/* A group's field, field by field: the job's group member, else the
 * default group's. */
static const config_setting_t *field(const config_setting_t *jg, const config_setting_t *dg, const char *key)
{
    const config_setting_t *s = jg ? config_setting_get_member(jg, key) : NULL;
    if (!s && dg)
        s = config_setting_get_member(dg, key);
    return s;
}

struct job_ctx {
    dp__job_reader_t *jr;
    dp__cfg_reader_t *rd;
    const config_setting_t *js; /* the job's group */
    const char *name;
    dp__wf_job_t *job;
    uint32_t k;           /* its index */
    const slots_t *J, *D; /* the job's keys, the defaults' */
    dp_job_spec_t spec;   /* its settings (from the first setting on) */
};

/* ------------------------------------------------------------------------ */
/* The kinds                                                                 */
/* ------------------------------------------------------------------------ */

/* One copy per distinct type: many jobs, few types. */
static const char *intern_type(dp__job_reader_t *jr, const char *type)
{
    dp__jobs_t *jobs = jr->jobs;
    for (size_t i = jobs->ntypes; i-- > 0;)
        if (strcmp(jobs->types[i], type) == 0)
            return jobs->types[i];
    char **nt = realloc(jobs->types, (jobs->ntypes + 1) * sizeof *nt);
    if (nt)
        jobs->types = nt;
    if (!nt || !(nt[jobs->ntypes] = dp__strdup(type))) {
        jr->rd->oom = true;
        return NULL;
    }
    return nt[jobs->ntypes++];
}

static void read_type(job_ctx_t *c, const config_setting_t *s)
{
    char what[320];
    const char *type = NULL;
    if (!s) {
        DP__CFG_PROBLEM(c->rd, c->js, "job '%s' has no type; add type = \"PLUGIN.TYPE\"; such as \"shell.command\"",
                        c->name);
        return;
    }
    bool is_string = config_setting_type(s) == CONFIG_TYPE_STRING;
    if (is_string)
        type = config_setting_get_string(s);
    else
        snprintf(what, sizeof what, "'type' of job '%s'", c->name);
    if (!is_string && !dp__cfg_string(c->rd, s, what, &type))
        return;
    const char *dot = strchr(type, '.');
    if (!dot || dot == type || !dot[1])
        DP__CFG_PROBLEM(c->rd, s,
                        "'type' of job '%s' must be PLUGIN.TYPE such as \"core.sleep\" or "
                        "\"shell.command\", found \"%s\"",
                        c->name, type);
    else
        c->job->type = intern_type(c->jr, type);
}

static void params_from_group(dp__cfg_reader_t *rd, const config_setting_t *g, dp_params_t *p, const char *job,
                              const config_setting_t *skip_if_in);

/* Converts one libconfig value into key of p. */
static void param_value(dp__cfg_reader_t *rd, const config_setting_t *m, dp_params_t *p, const char *job)
{
    const char *key = config_setting_name(m);
    int rc = DP_OK;
    switch (config_setting_type(m)) {
    case CONFIG_TYPE_STRING: rc = dp_params_set_string(p, key, config_setting_get_string(m)); break;
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: {
        long long v;
        const char *text;
        if (!dp__cfg_int(rd, m, &v, &text)) {
            DP__CFG_PROBLEM(rd, m,
                            "params.%s of job '%s' is out of range: found %s; integers are 64-bit, from "
                            "%lld to %lld",
                            key, job, text, LLONG_MIN, LLONG_MAX);
            return;
        }
        rc = dp_params_set_int(p, key, (int64_t)v);
        break;
    }
    case CONFIG_TYPE_FLOAT: rc = dp_params_set_float(p, key, config_setting_get_float(m)); break;
    case CONFIG_TYPE_BOOL: rc = dp_params_set_bool(p, key, config_setting_get_bool(m)); break;
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST: {
        const config_setting_t **items = NULL;
        size_t n = 0;
        char what[256];
        snprintf(what, sizeof what, "params.%s of job '%s'", key, job);
        if (!dp__cfg_string_list(rd, m, what, false, &items, &n))
            return;
        const char **strs = calloc(n ? n : 1, sizeof *strs);
        if (!strs) {
            free(items);
            rd->oom = true;
            return;
        }
        for (size_t i = 0; i < n; i++)
            strs[i] = config_setting_get_string(items[i]);
        rc = dp_params_set_list(p, key, strs, n);
        free(strs);
        free(items);
        break;
    }
    case CONFIG_TYPE_GROUP: {
        dp_params_t *sub = dp_params_add_group(p, key);
        if (!sub) {
            rc = DP_ENOMEM;
            break;
        }
        dp_params_set_origin(sub, dp__cfg_file(rd, m), dp__cfg_line(rd, m));
        params_from_group(rd, m, sub, job, NULL);
        break;
    }
    default: DP__CFG_PROBLEM(rd, m, "params.%s of job '%s' has an unsupported type", key, job); return;
    }
    if (rc == DP_ENOMEM)
        rd->oom = true;
    else if (rc != DP_OK)
        DP__CFG_PROBLEM(rd, m, "params.%s of job '%s' was refused: %s", key, job, dp_strerror(rc));
}

/* Every member of g into p, except those also present in skip_if_in (the
 * job's own params, which win over the defaults'). */
static void params_from_group(dp__cfg_reader_t *rd, const config_setting_t *g, dp_params_t *p, const char *job,
                              const config_setting_t *skip_if_in)
{
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        if (skip_if_in && config_setting_get_member(skip_if_in, config_setting_name(m)))
            continue;
        param_value(rd, m, p, job);
    }
}

/* Job k's params lack what was refused: not handed to its type. */
static void mark_unbuildable(dp__job_reader_t *jr, uint32_t k)
{
    dp__jobs_t *jobs = jr->jobs;
    if (!jobs->unbuildable && !(jobs->unbuildable = calloc(jobs->n, 1))) {
        jr->rd->oom = true;
        return;
    }
    jobs->unbuildable[k] = 1;
}

/* Params: the job's own group, then the defaults' keys it does not set. A
 * job with neither gets its (empty) params after libconfig's tree is freed,
 * in its memory (dp__jobs_finish_params). */
static void read_params(job_ctx_t *c, const job_field_t *f, const config_setting_t *jp, const config_setting_t *dp)
{
    dp__cfg_reader_t *rd = c->rd;
    if (jp && config_setting_type(jp) != CONFIG_TYPE_GROUP) {
        char what[320];
        snprintf(what, sizeof what, "'params' of job '%s'", c->name);
        dp__cfg_group(rd, jp, what, f->example);
        jp = NULL;
    }
    if (dp && config_setting_type(dp) != CONFIG_TYPE_GROUP)
        dp = NULL; /* reported once, when the defaults were read */
    if (!jp && !dp)
        return;
    if (!(c->job->params = dp_params_new())) {
        rd->oom = true;
        return;
    }
    const config_setting_t *origin = jp ? jp : c->js;
    dp_params_set_origin(c->job->params, dp__cfg_file(rd, origin), dp__cfg_line(rd, origin));
    unsigned before = rd->pr->count;
    if (jp)
        params_from_group(rd, jp, c->job->params, c->name, NULL);
    if (dp)
        params_from_group(rd, dp, c->job->params, c->name, jp);
    if (rd->pr->count != before)
        mark_unbuildable(c->jr, c->k);
}

/* An unsigned setting of the spec, of either width. */
static void store_uint(void *to, size_t size, unsigned v)
{
    if (size == sizeof(unsigned))
        *(unsigned *)to = v;
    else
        *(uint64_t *)to = v;
}

/* One setting of the spec (a row of a kind from F_DURATION on, not a
 * group) from s, named what in its problems. */
static void read_value(job_ctx_t *c, const job_field_t *f, const config_setting_t *s, const char *what)
{
    dp__cfg_reader_t *rd = c->rd;
    char *to = (char *)&c->spec + f->off;
    switch (f->kind) {
    case F_DURATION: dp__cfg_duration(rd, s, what, (uint64_t *)(void *)to); break;
    case F_SIZE: dp__cfg_size(rd, s, what, (uint64_t *)(void *)to); break;
    case F_FLOAT: dp__cfg_float(rd, s, what, f->min, f->max, (double *)(void *)to); break;
    case F_UINT: {
        unsigned v;
        if (dp__cfg_uint(rd, s, what, (long long)f->min, (long long)f->max, &v))
            store_uint(to, f->size, v);
        break;
    }
    case F_INT: {
        long long v;
        const char *text;
        if (!dp__cfg_is_int(s))
            DP__CFG_PROBLEM(rd, s, "%s must be an integer from %.0f to %.0f, found %s", what, f->min, f->max,
                            dp__cfg_type_name(s));
        else if (!dp__cfg_int(rd, s, &v, &text))
            DP__CFG_PROBLEM(rd, s, "%s must be an integer from %.0f to %.0f, found %s", what, f->min, f->max, text);
        else if (v < (long long)f->min || v > (long long)f->max)
            DP__CFG_PROBLEM(rd, s, "%s must be an integer from %.0f to %.0f, found %lld", what, f->min, f->max, v);
        else
            *(int *)(void *)to = (int)v;
        break;
    }
    case F_POOL: {
        const char *name;
        if (!dp__cfg_string(rd, s, what, &name))
            break;
        const dp__jobs_t *jobs = c->jr->jobs;
        size_t i = 0;
        while (i < jobs->npools && strcmp(jobs->pool_names[i], name) != 0)
            i++;
        if (i < jobs->npools) {
            *(const char **)(void *)to = jobs->pool_names[i];
            break;
        }
        const char *near = jobs->npools ? dp__nearest_word(name, (const char *const *)jobs->pool_names) : NULL;
        if (near)
            DP__CFG_PROBLEM(rd, s,
                            "%s names pool \"%s\", which is not declared; did you mean \"%s\"? (or declare it "
                            "at the top level: pools = { %s = 2; };)",
                            what, name, near, name);
        else
            DP__CFG_PROBLEM(rd, s,
                            "%s names pool \"%s\", which is not declared; declare it at the top level, e.g. "
                            "pools = { %s = 2; }; (a pool's number is its slots)",
                            what, name, name);
        break;
    }
    case F_BOOL: dp__cfg_bool(rd, s, what, (bool *)(void *)to); break;
    case F_CHOICE: {
        const char *word;
        if (!dp__cfg_string(rd, s, what, &word))
            break;
        const field_choice_t *ch = f->choices;
        while (ch->word && strcmp(ch->word, word) != 0)
            ch++;
        if (ch->word)
            memcpy(to, &ch->value, sizeof ch->value);
        else
            DP__CFG_PROBLEM(rd, s, "%s must be %s, found \"%s\"", what, f->expect, word);
        break;
    }
    default: break;
    }
}

/* A group of settings (backoff, readiness, limits): the job's group (its
 * unknown keys refused), each field the job's, else the defaults'. */
static void read_group(job_ctx_t *c, const job_field_t *f, const config_setting_t *jg, const config_setting_t *dg)
{
    char what[320], where[320];
    const char *keys[NFIELDS + 1];
    snprintf(what, sizeof what, "'%s' of job '%s'", f->key, c->name);
    snprintf(where, sizeof where, "in the %s of job '%s'", f->key, c->name);
    if (jg && !dp__cfg_usable_group(c->rd, jg, what, f->example, field_keys(f->sub, false, keys), where))
        jg = NULL;
    if (dg && config_setting_type(dg) != CONFIG_TYPE_GROUP)
        dg = NULL; /* reported once, when the defaults were read */
    for (const job_field_t *sf = f->sub; sf->key; sf++) {
        const config_setting_t *s = field(jg, dg, sf->key);
        if (!s)
            continue;
        snprintf(what, sizeof what, "%s.%s of job '%s'", f->key, sf->key, c->name);
        read_value(c, sf, s, what);
    }
    if (f->check)
        f->check(c, jg, dg);
}

/* Limits are setrlimit's in an isolated job's child process. */
static void limits_need_process(job_ctx_t *c, const config_setting_t *jg, const config_setting_t *dg)
{
    if ((jg || dg) && c->spec.isolation != DP_ISOLATION_PROCESS)
        DP__CFG_PROBLEM(c->rd, jg ? jg : dg,
                        "job '%s' has limits but runs in the host's process; limits apply "
                        "only to isolation = \"process\": add it to the job (or to defaults), "
                        "or remove the limits",
                        c->name);
}

/* Readiness's keys that count or space probes need a poll (a period);
 * the cap of the grown period cannot be below the period; a first probe
 * after the readiness timeout would never come. */
static void readiness_rules(job_ctx_t *c, const config_setting_t *jg, const config_setting_t *dg)
{
    const dp_readiness_t *r = &c->spec.readiness;
    const dp_readiness_ext_t *x = &c->spec.readiness_ext;
    const config_setting_t *at = jg ? jg : dg, *s;
    char d1[32], d2[32];
    if (r->period_ms == 0) {
        static const char *const need_period[] = {"success_threshold", "failure_threshold", "backoff", "max_period",
                                                  NULL};
        for (size_t i = 0; need_period[i]; i++) {
            if (!(s = field(jg, dg, need_period[i])))
                continue;
            DP__CFG_PROBLEM(c->rd, s,
                            "readiness.%s of job '%s' needs a poll, but the job has no readiness period "
                            "(it probes once); add period = \"2s\"; to its readiness, or remove %s",
                            need_period[i], c->name, need_period[i]);
            return;
        }
    }
    if (x->max_period_ms && x->max_period_ms < r->period_ms) {
        s = field(jg, dg, "max_period");
        DP__CFG_PROBLEM(c->rd, s ? s : at,
                        "readiness.max_period of job '%s' (%s) is shorter than its period (%s); the period "
                        "only grows up to max_period: make max_period at least the period",
                        c->name, dp_duration_format(x->max_period_ms, d1, sizeof d1),
                        dp_duration_format(r->period_ms, d2, sizeof d2));
    }
    if (x->initial_delay_ms && r->timeout_ms && x->initial_delay_ms >= r->timeout_ms) {
        s = field(jg, dg, "initial_delay");
        DP__CFG_PROBLEM(c->rd, s ? s : at,
                        "readiness.initial_delay of job '%s' (%s) is not shorter than its readiness timeout "
                        "(%s), which counts from the end of run: the job would never be probed; shorten the "
                        "delay or lengthen the timeout",
                        c->name, dp_duration_format(x->initial_delay_ms, d1, sizeof d1),
                        dp_duration_format(r->timeout_ms, d2, sizeof d2));
    }
}

/* A deadline bounds every attempt together: one shorter than a single
 * attempt's timeout would leave the timeout dead (refused rather than
 * guessed at: the fix is one of two edits). */
static void deadline_vs_timeout(job_ctx_t *c, const config_setting_t *js, const config_setting_t *ds)
{
    (void)ds;
    char d1[32], d2[32];
    if (c->spec.deadline_ms && c->spec.timeout_ms && c->spec.deadline_ms < c->spec.timeout_ms)
        DP__CFG_PROBLEM(c->rd, js,
                        "deadline of job '%s' (%s) is shorter than its timeout (%s); the deadline bounds all "
                        "attempts and backoffs together, the timeout one attempt: make the deadline at least "
                        "the timeout, or shorten the timeout",
                        c->name, dp_duration_format(c->spec.deadline_ms, d1, sizeof d1),
                        dp_duration_format(c->spec.timeout_ms, d2, sizeof d2));
}

/* ------------------------------------------------------------------------ */
/* A job                                                                     */
/* ------------------------------------------------------------------------ */

/* The row of job_fields for key. */
static size_t field_index(const char *key)
{
    size_t k = 0;
    while (k < NFIELDS && strcmp(job_fields[k].key, key) != 0)
        k++;
    return k;
}

/* pool_slots needs a pool, and no more slots than the pool has (a job
 * that could never start). */
static void check_pool(job_ctx_t *c)
{
    size_t kp = field_index("pool"), ks = field_index("pool_slots");
    const config_setting_t *ss = c->J->s[ks] ? c->J->s[ks] : c->D->s[ks];
    const config_setting_t *ps = c->J->s[kp] ? c->J->s[kp] : c->D->s[kp];
    if (ss && !ps) {
        DP__CFG_PROBLEM(c->rd, ss,
                        "job '%s' has pool_slots but no pool; add pool = \"NAME\"; (one of the top-level "
                        "pools) or remove pool_slots",
                        c->name);
        return;
    }
    if (!ss || !c->spec.pool)
        return;
    const dp__jobs_t *jobs = c->jr->jobs;
    for (size_t i = 0; i < jobs->npools; i++)
        if (jobs->pool_names[i] == c->spec.pool && c->spec.pool_slots > jobs->pool_slots[i])
            DP__CFG_PROBLEM(c->rd, ss,
                            "'pool_slots' of job '%s' is %u, but pool \"%s\" has %u slots: the job could never "
                            "start; lower pool_slots to at most %u or give the pool more slots (pools = { %s = %u; })",
                            c->name, c->spec.pool_slots, c->spec.pool, jobs->pool_slots[i], jobs->pool_slots[i],
                            c->spec.pool, c->spec.pool_slots);
}

/* The job's own setting of key (not the defaults'), or NULL. */
static const config_setting_t *own(const job_ctx_t *c, const char *key)
{
    for (size_t k = 0; k < NFIELDS; k++)
        if (strcmp(job_fields[k].key, key) == 0)
            return c->J->s[k];
    return NULL;
}

/* Trigger rules that cannot mean what they say (README.md, "Trigger rules
 * and final jobs"): a rule on a job without dependencies, a cleanup grace
 * on a job that is no final job. */
static void check_rules(job_ctx_t *c)
{
    const config_setting_t *s;
    if (c->spec.run_if != DP_RUN_IF_ALL_SUCCESS && c->job->ndeps == 0 && (s = own(c, "run_if")))
        DP__CFG_PROBLEM(c->rd, s,
                        "job '%s' has run_if = \"%s\" but no depends_on: a rule decides from how the "
                        "dependencies ended, and it has none; add depends_on = [ ... ] (the jobs it cleans up "
                        "after or handles), or remove run_if",
                        c->name, dp_run_if_name(c->spec.run_if));
    if (c->spec.run_if == DP_RUN_IF_ALL_SUCCESS && (s = own(c, "cleanup_timeout")))
        DP__CFG_PROBLEM(c->rd, s,
                        "job '%s' has cleanup_timeout but is no final job (its run_if is \"all_success\"): "
                        "only a job with run_if = \"all_done\" or \"any_failed\" runs after the run was cut; "
                        "set run_if, or remove cleanup_timeout",
                        c->name);
}

/* The job's settings into jobs->specs, or none (spec0): jobs with equal
 * settings in a row share one copy. Whether two settings are the same is a
 * comparison of bytes: only ever a missed sharing if not (padding). */
static void share_spec(dp__job_reader_t *jr, dp__wf_job_t *job, const dp_job_spec_t *sp)
{
    dp__jobs_t *jobs = jr->jobs;
    if (memcmp(sp, &jobs->spec0, sizeof *sp) == 0)
        return;
    if (jr->last_spec && memcmp(sp, jr->last_spec, sizeof *sp) == 0) {
        job->spec = jr->last_spec;
        return;
    }
    if (jobs->nspecs == jr->specs_cap) {
        size_t ncap = jr->specs_cap ? jr->specs_cap * 2 : 16;
        dp_job_spec_t **nsp = realloc(jobs->specs, ncap * sizeof *nsp);
        if (!nsp) {
            jr->rd->oom = true;
            return;
        }
        jobs->specs = nsp;
        jr->specs_cap = ncap;
    }
    dp_job_spec_t *copy = malloc(sizeof *copy);
    if (!copy) {
        jr->rd->oom = true;
        return;
    }
    memcpy(copy, sp, sizeof *copy);
    jobs->specs[jobs->nspecs++] = copy;
    job->spec = jr->last_spec = copy;
}

/* The job's name, or NULL when it cannot be read (said so; the job is
 * dropped). index: its place in the list. */
static const char *read_name(dp__job_reader_t *jr, const config_setting_t *js, size_t index)
{
    dp__cfg_reader_t *rd = jr->rd;
    const config_setting_t *s;
    const char *name = NULL;
    switch (dp__job_name_read(js, &s, &name)) {
    case DP__JN_OK:
        if (!dp__cfg_utf8_ok(name))
            dp__cfg_not_utf8(rd, s, "a job's name is", name);
        return name;
    case DP__JN_NOT_GROUP:
        DP__CFG_PROBLEM(rd, js, "job %zu must be a group such as { name = \"A\"; type = \"core.noop\"; }, found %s",
                        index + 1, dp__cfg_type_name(js));
        break;
    case DP__JN_NO_NAME:
        DP__CFG_PROBLEM(rd, js,
                        "job %zu has no name; add name = \"...\"; (names are unique and used by "
                        "depends_on)",
                        index + 1);
        break;
    case DP__JN_NOT_STRING:
        dp__cfg_string(rd, s, "a job's name", &name); /* says so */
        break;
    case DP__JN_EMPTY:
        DP__CFG_PROBLEM(rd, s, "job %zu has an empty name; names are unique and used by depends_on", index + 1);
        break;
    }
    jr->dropped = true;
    return NULL;
}

/* One row of job_fields for the job. */
static void read_field(job_ctx_t *c, size_t k)
{
    const job_field_t *f = &job_fields[k];
    const config_setting_t *js = c->J->s[k], *ds = c->D->s[k];
    char what[320];
    switch (f->kind) {
    case F_NAME: break; /* read first */
    case F_TYPE: read_type(c, js ? js : ds); break;
    case F_PARAMS: read_params(c, f, js, ds); break;
    case F_DEPENDS_ON:
        c->job->dep_off = c->jr->jobs->ndep_ids;
        if (js)
            dp__job_deps_read(c->jr, c->job, c->k, js);
        break;
    case F_GROUP:
        if (js || ds)
            read_group(c, f, js, ds);
        break;
    default:
        if (!js && !(js = ds))
            break;
        snprintf(what, sizeof what, "'%s' of job '%s'", f->key, c->name);
        read_value(c, f, js, what);
        if (f->check)
            f->check(c, js, NULL);
        break;
    }
}

/* The job js (the list's index-th), its keys the job's own, else D's (the
 * defaults'). */
static void read_job(dp__job_reader_t *jr, const config_setting_t *js, const slots_t *D, size_t index)
{
    dp__cfg_reader_t *rd = jr->rd;
    const char *name = read_name(jr, js, index);
    if (!name)
        return;
    /* dp__jobs_index gave the readable jobs their indices in this order. */
    uint32_t k = (uint32_t)jr->next++;
    if (k >= jr->jobs->n) { /* dp__jobs_index ran out of memory */
        rd->oom = true;
        return;
    }
    slots_t J;
    if (!fill_slots(js, &J)) {
        char where[320];
        const char *keys[NFIELDS + 1];
        snprintf(where, sizeof where, "in job '%s'", name);
        dp__cfg_check_keys(rd, js, field_keys(job_fields, false, keys), where);
    }
    job_ctx_t c = {.jr = jr, .rd = rd, .js = js, .name = name, .job = &jr->jobs->v[k], .k = k, .J = &J, .D = D};
    size_t f = 0;
    for (; f < NFIELDS && job_fields[f].kind < F_DURATION && !rd->oom; f++)
        read_field(&c, f);
    /* Most jobs set nothing and have no defaults: spec0, nothing read. */
    if (rd->oom || (!has_settings(&J) && !has_settings(D)))
        return;
    dp_job_spec_init(&c.spec);
    for (; f < NFIELDS && !rd->oom; f++)
        read_field(&c, f);
    check_pool(&c);
    check_rules(&c);
    share_spec(jr, c.job, &c.spec);
}

/* ------------------------------------------------------------------------ */
/* The list, the defaults                                                    */
/* ------------------------------------------------------------------------ */

/* A cleanup grace in `defaults` for a workflow that has no final job: it
 * would apply to nothing (trigger rules). */
static void check_default_grace(dp__job_reader_t *jr, const slots_t *D)
{
    const config_setting_t *s = NULL;
    for (size_t k = 0; k < NFIELDS && !s; k++)
        if (strcmp(job_fields[k].key, "cleanup_timeout") == 0)
            s = D->s[k];
    if (!s)
        return;
    const dp__jobs_t *jobs = jr->jobs;
    for (size_t i = 0; i < jobs->n; i++)
        if (dp__jobs_spec(jobs, &jobs->v[i])->run_if != DP_RUN_IF_ALL_SUCCESS)
            return;
    DP__CFG_PROBLEM(jr->rd, s,
                    "defaults.cleanup_timeout is set but no job is a final job: it applies only to jobs with "
                    "run_if = \"all_done\" or \"any_failed\", which run after the run was cut; give a job "
                    "such a run_if, or remove cleanup_timeout");
}

void dp__jobs_read(dp__cfg_reader_t *rd, dp__jobs_t *jobs, const config_setting_t *list, size_t n,
                   const config_setting_t *defaults)
{
    dp__job_reader_t jr = {.rd = rd, .jobs = jobs};
    slots_t D; /* the defaults by key, looked up once for all jobs */
    fill_slots(defaults, &D);
    if (!(jobs->v = calloc(n, sizeof *jobs->v)))
        rd->oom = true;
    if (!rd->oom)
        dp__jobs_index(&jr, list, n);
    if (!rd->oom && !(jr.mark = calloc(jobs->n ? jobs->n : 1, sizeof *jr.mark)))
        rd->oom = true;
    for (size_t i = 0; jobs->v && i < n && !rd->oom; i++)
        read_job(&jr, config_setting_get_elem(list, (unsigned)i), &D, i);
    free(jr.mark);
    if (!rd->oom)
        check_default_grace(&jr, &D);
    /* Names can be checked despite other problems; only a job dropped for
     * want of a name would make its dependents' references look unknown. */
    if (!rd->oom && !jr.dropped)
        dp__jobs_check_names(&jr);
    free(jr.unknown); /* its names were libconfig's */
}

void dp__jobs_read_defaults(dp__cfg_reader_t *rd, const config_setting_t *d)
{
    const char *keys[NFIELDS + 1];
    field_keys(job_fields, true, keys);
    for (int i = 0; i < config_setting_length(d); i++) {
        const config_setting_t *m = config_setting_get_elem(d, (unsigned)i);
        const char *key = config_setting_name(m);
        if (dp__cfg_key_in(key, keys))
            continue;
        const job_field_t *f = job_fields;
        while (f->key && strcmp(f->key, key) != 0)
            f++;
        if (f->key) /* name and depends_on belong to each job: say so rather than "unknown" */
            DP__CFG_PROBLEM(rd, m, "'%s' cannot have a default: each job sets its own; move it into the jobs", key);
        else
            dp__cfg_unknown_key(rd, m, keys, "in 'defaults'");
    }
    /* The groups: those of a job's params and settings are checked for each
     * job that takes them. */
    for (const job_field_t *f = job_fields; f->key; f++) {
        const config_setting_t *s;
        if ((f->kind != F_PARAMS && f->kind != F_GROUP) || !(s = config_setting_get_member(d, f->key)))
            continue;
        char what[64], where[64];
        snprintf(what, sizeof what, "defaults.%s", f->key);
        snprintf(where, sizeof where, "in defaults.%s", f->key);
        if (f->kind == F_PARAMS)
            dp__cfg_group(rd, s, what, f->default_example);
        else
            dp__cfg_usable_group(rd, s, what, f->default_example, field_keys(f->sub, false, keys), where);
    }
}

void dp__jobs_finish_params(dp__cfg_reader_t *rd, dp__jobs_t *jobs)
{
    for (size_t i = 0; i < jobs->n && !rd->oom; i++) {
        dp__wf_job_t *job = &jobs->v[i];
        if (job->params)
            continue;
        if (!(job->params = dp_params_new()))
            rd->oom = true;
        else
            dp_params_set_origin(job->params, job->file, job->line);
    }
}

/* ------------------------------------------------------------------------ */
/* The jobs' memory                                                          */
/* ------------------------------------------------------------------------ */

void dp__jobs_init(dp__jobs_t *jobs)
{
    dp_job_spec_init(&jobs->spec0);
}

void dp__jobs_free(dp__jobs_t *jobs)
{
    for (size_t i = 0; i < jobs->n; i++)
        dp_params_free(jobs->v[i].params);
    free(jobs->v);
    free(jobs->dep_ids);
    free(jobs->index);
    for (size_t i = 0; i < jobs->nspecs; i++)
        free(jobs->specs[i]);
    free(jobs->specs);
    dp__strarena_free(&jobs->names);
    for (size_t i = 0; i < jobs->ntypes; i++)
        free(jobs->types[i]);
    free(jobs->types);
    free(jobs->unbuildable);
    for (size_t i = 0; i < jobs->npools; i++)
        free(jobs->pool_names[i]);
    free(jobs->pool_names);
    free(jobs->pool_slots);
}
