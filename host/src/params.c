/*
 * params.c - typed job params: the group of named values a plugin job type
 * is configured with, and the typed getters plugins read it through.
 *
 * Values keep insertion order (a plugin may list them "in file order").
 * Lookups are linear: a job has a handful of params, and they are read once
 * per attempt.
 *
 * A failed getter records its message in a diagnostic owned by the root
 * group and shared by its nested groups. The getters take a const pointer
 * (the plugin must not change its params), so the diagnostic sits behind a
 * pointer rather than in the struct itself.
 */
#include "params.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct params_diag {
    char *msg;
};

struct param {
    char *key;
    dp_param_kind_t kind;
    union {
        char *s;
        int64_t i;
        double f;
        bool b;
        struct {
            char **items;
            size_t n;
        } list;
        dp_params_t *group;
    } v;
};

struct dp_params {
    struct param *items;
    size_t n, cap;
    char *path; /* "env" for a nested group, NULL for the root */
    char *file; /* origin, for messages; may be NULL */
    int line;
    const dp_params_t *parent; /* origin falls back to the parent's */
    struct params_diag *diag;  /* the root's; shared by nested groups */
    bool owns_diag;
};

const char *dp__param_kind_name(dp_param_kind_t kind)
{
    switch (kind) {
    case DP_PARAM_KIND_STRING: return "a string";
    case DP_PARAM_KIND_INT: return "an integer";
    case DP_PARAM_KIND_FLOAT: return "a float";
    case DP_PARAM_KIND_BOOL: return "a boolean";
    case DP_PARAM_KIND_LIST: return "a list of strings";
    case DP_PARAM_KIND_GROUP: return "a group";
    }
    return "nothing";
}

static dp_params_t *params_alloc(const dp_params_t *parent, const char *path)
{
    dp_params_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (parent) {
        p->parent = parent;
        p->diag = parent->diag;
    } else {
        p->diag = calloc(1, sizeof(*p->diag));
        if (!p->diag) {
            free(p);
            return NULL;
        }
        p->owns_diag = true;
    }
    if (path && !(p->path = strdup(path))) {
        if (p->owns_diag)
            free(p->diag);
        free(p);
        return NULL;
    }
    return p;
}

dp_params_t *dp_params_new(void)
{
    return params_alloc(NULL, NULL);
}

static void param_clear(struct param *it)
{
    switch (it->kind) {
    case DP_PARAM_KIND_STRING: free(it->v.s); break;
    case DP_PARAM_KIND_LIST:
        for (size_t i = 0; i < it->v.list.n; i++)
            free(it->v.list.items[i]);
        free(it->v.list.items);
        break;
    case DP_PARAM_KIND_GROUP: dp_params_free(it->v.group); break;
    default: break;
    }
    memset(&it->v, 0, sizeof(it->v));
}

void dp_params_free(dp_params_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        param_clear(&p->items[i]);
        free(p->items[i].key);
    }
    free(p->items);
    free(p->path);
    free(p->file);
    if (p->owns_diag) {
        free(p->diag->msg);
        free(p->diag);
    }
    free(p);
}

void dp_params_set_origin(dp_params_t *p, const char *file, int line)
{
    if (!p)
        return;
    char *copy = file ? strdup(file) : NULL;
    if (file && !copy)
        return; /* keep the old origin: it only serves messages */
    free(p->file);
    p->file = copy;
    p->line = line;
}

static struct param *find(const dp_params_t *p, const char *key)
{
    if (!p || !key)
        return NULL;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->items[i].key, key) == 0)
            return &p->items[i];
    return NULL;
}

/* The slot for key: the existing one (its old value cleared only by the
 * caller, once the new value is ready, so that a failure changes nothing) or
 * a new one at the end. NULL when out of memory. */
static struct param *slot(dp_params_t *p, const char *key, bool *fresh)
{
    struct param *it = find(p, key);
    *fresh = false;
    if (it)
        return it;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct param *items = realloc(p->items, cap * sizeof(*items));
        if (!items)
            return NULL;
        p->items = items;
        p->cap = cap;
    }
    it = &p->items[p->n];
    memset(it, 0, sizeof(*it));
    if (!(it->key = strdup(key)))
        return NULL;
    p->n++;
    *fresh = true;
    return it;
}

static bool valid_key(const char *key)
{
    return key && *key;
}

/* The entry for key (added if new), emptied and given kind; NULL when out
 * of memory. Every typed setter starts here. */
static struct param *claim(dp_params_t *p, const char *key, dp_param_kind_t kind)
{
    bool fresh;
    struct param *it = slot(p, key, &fresh);
    if (it) {
        param_clear(it);
        it->kind = kind;
    }
    return it;
}

int dp_params_set_string(dp_params_t *p, const char *key, const char *value)
{
    if (!p || !valid_key(key) || !value)
        return DP_EINVAL;
    char *copy = strdup(value);
    if (!copy)
        return DP_ENOMEM;
    struct param *it = claim(p, key, DP_PARAM_KIND_STRING);
    if (!it) {
        free(copy);
        return DP_ENOMEM;
    }
    it->v.s = copy;
    return DP_OK;
}

int dp_params_set_int(dp_params_t *p, const char *key, int64_t value)
{
    if (!p || !valid_key(key))
        return DP_EINVAL;
    struct param *it = claim(p, key, DP_PARAM_KIND_INT);
    if (!it)
        return DP_ENOMEM;
    it->v.i = value;
    return DP_OK;
}

int dp_params_set_float(dp_params_t *p, const char *key, double value)
{
    if (!p || !valid_key(key))
        return DP_EINVAL;
    struct param *it = claim(p, key, DP_PARAM_KIND_FLOAT);
    if (!it)
        return DP_ENOMEM;
    it->v.f = value;
    return DP_OK;
}

int dp_params_set_bool(dp_params_t *p, const char *key, bool value)
{
    if (!p || !valid_key(key))
        return DP_EINVAL;
    struct param *it = claim(p, key, DP_PARAM_KIND_BOOL);
    if (!it)
        return DP_ENOMEM;
    it->v.b = value;
    return DP_OK;
}

int dp_params_set_list(dp_params_t *p, const char *key, const char *const *items, size_t n)
{
    if (!p || !valid_key(key) || (n && !items))
        return DP_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!items[i])
            return DP_EINVAL;
    char **copy = calloc(n ? n : 1, sizeof(*copy));
    if (!copy)
        return DP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!(copy[i] = strdup(items[i]))) {
            for (size_t j = 0; j < i; j++)
                free(copy[j]);
            free(copy);
            return DP_ENOMEM;
        }
    }
    bool fresh;
    struct param *it = slot(p, key, &fresh);
    if (!it) {
        for (size_t i = 0; i < n; i++)
            free(copy[i]);
        free(copy);
        return DP_ENOMEM;
    }
    param_clear(it);
    it->kind = DP_PARAM_KIND_LIST;
    it->v.list.items = copy;
    it->v.list.n = n;
    return DP_OK;
}

static char *join_path(const dp_params_t *p, const char *key)
{
    if (!p->path)
        return strdup(key);
    size_t a = strlen(p->path), b = strlen(key);
    char *s = malloc(a + b + 2);
    if (!s)
        return NULL;
    memcpy(s, p->path, a);
    s[a] = '.';
    memcpy(s + a + 1, key, b + 1);
    return s;
}

dp_params_t *dp_params_add_group(dp_params_t *p, const char *key)
{
    if (!p || !valid_key(key))
        return NULL;
    char *path = join_path(p, key);
    if (!path)
        return NULL;
    dp_params_t *g = params_alloc(p, path);
    free(path);
    if (!g)
        return NULL;
    bool fresh;
    struct param *it = slot(p, key, &fresh);
    if (!it) {
        dp_params_free(g);
        return NULL;
    }
    param_clear(it);
    it->kind = DP_PARAM_KIND_GROUP;
    it->v.group = g;
    return g;
}

/* Copies src's values into dst (an empty group). */
static int copy_into(dp_params_t *dst, const dp_params_t *src)
{
    if (src->file)
        dp_params_set_origin(dst, src->file, src->line);
    for (size_t i = 0; i < src->n; i++) {
        const struct param *it = &src->items[i];
        int rc = DP_OK;
        switch (it->kind) {
        case DP_PARAM_KIND_STRING: rc = dp_params_set_string(dst, it->key, it->v.s); break;
        case DP_PARAM_KIND_INT: rc = dp_params_set_int(dst, it->key, it->v.i); break;
        case DP_PARAM_KIND_FLOAT: rc = dp_params_set_float(dst, it->key, it->v.f); break;
        case DP_PARAM_KIND_BOOL: rc = dp_params_set_bool(dst, it->key, it->v.b); break;
        case DP_PARAM_KIND_LIST:
            rc = dp_params_set_list(dst, it->key, (const char *const *)it->v.list.items, it->v.list.n);
            break;
        case DP_PARAM_KIND_GROUP: {
            dp_params_t *g = dp_params_add_group(dst, it->key);
            rc = g ? copy_into(g, it->v.group) : DP_ENOMEM;
            break;
        }
        }
        if (rc != DP_OK)
            return rc;
    }
    return DP_OK;
}

dp_params_t *dp_params_clone(const dp_params_t *p)
{
    if (!p)
        return NULL;
    dp_params_t *c = params_alloc(NULL, NULL);
    if (!c)
        return NULL;
    if (copy_into(c, p) != DP_OK) {
        dp_params_free(c);
        return NULL;
    }
    return c;
}

/* ---- getters ------------------------------------------------------------ */

const char *dp__params_origin(const dp_params_t *p, char *buf, size_t len)
{
    while (p && !p->file)
        p = p->parent;
    if (!p || !len) {
        if (len)
            buf[0] = '\0';
        return buf;
    }
    if (p->line > 0)
        snprintf(buf, len, "%s:%d", p->file, p->line);
    else
        snprintf(buf, len, "%s", p->file);
    return buf;
}

/* Records "param 'KEY' (ORIGIN): <message>" and returns code. */
static int fail(const dp_params_t *p, const char *key, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(const dp_params_t *p, const char *key, int code, const char *fmt, ...)
{
    char origin[512], what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    dp__params_origin(p, origin, sizeof(origin));
    char *msg = NULL;
    int n;
    if (origin[0])
        n = asprintf(&msg, "param '%s%s%s' (%s): %s", p->path ? p->path : "", p->path ? "." : "", key, origin, what);
    else
        n = asprintf(&msg, "param '%s%s%s': %s", p->path ? p->path : "", p->path ? "." : "", key, what);
    if (n < 0)
        msg = NULL; /* out of memory: keep no message rather than a stale one */
    free(p->diag->msg);
    p->diag->msg = msg;
    return code;
}

static int wrong_type(const dp_params_t *p, const char *key, const struct param *it, dp_param_kind_t want)
{
    return fail(p, key, DP_PARAM_WRONG_TYPE, "expected %s, found %s", dp__param_kind_name(want),
                dp__param_kind_name(it->kind));
}

int dp__params_get_string(const dp_params_t *p, const char *key, const char **out)
{
    const struct param *it = find(p, key);
    if (!it)
        return DP_PARAM_ABSENT;
    if (it->kind != DP_PARAM_KIND_STRING)
        return wrong_type(p, key, it, DP_PARAM_KIND_STRING);
    *out = it->v.s;
    return DP_PARAM_OK;
}

int dp__params_get_int(const dp_params_t *p, const char *key, int64_t *out)
{
    const struct param *it = find(p, key);
    if (!it)
        return DP_PARAM_ABSENT;
    if (it->kind != DP_PARAM_KIND_INT)
        return wrong_type(p, key, it, DP_PARAM_KIND_INT);
    *out = it->v.i;
    return DP_PARAM_OK;
}

int dp__params_get_float(const dp_params_t *p, const char *key, double *out)
{
    const struct param *it = find(p, key);
    if (!it)
        return DP_PARAM_ABSENT;
    if (it->kind == DP_PARAM_KIND_INT) {
        *out = (double)it->v.i;
        return DP_PARAM_OK;
    }
    if (it->kind != DP_PARAM_KIND_FLOAT)
        return wrong_type(p, key, it, DP_PARAM_KIND_FLOAT);
    *out = it->v.f;
    return DP_PARAM_OK;
}

int dp__params_get_bool(const dp_params_t *p, const char *key, int *out)
{
    const struct param *it = find(p, key);
    if (!it)
        return DP_PARAM_ABSENT;
    if (it->kind != DP_PARAM_KIND_BOOL)
        return wrong_type(p, key, it, DP_PARAM_KIND_BOOL);
    *out = it->v.b ? 1 : 0;
    return DP_PARAM_OK;
}

int dp__params_get_duration_ms(const dp_params_t *p, const char *key, uint64_t *out)
{
    const struct param *it = find(p, key);
    if (!it)
        return DP_PARAM_ABSENT;
    if (it->kind == DP_PARAM_KIND_INT) {
        if (it->v.i < 0)
            return fail(p, key, DP_PARAM_BAD_VALUE, "a duration cannot be negative (%" PRId64 " ms); use 0 or more",
                        it->v.i);
        *out = (uint64_t)it->v.i;
        return DP_PARAM_OK;
    }
    if (it->kind != DP_PARAM_KIND_STRING)
        return fail(p, key, DP_PARAM_WRONG_TYPE, "expected a duration (\"30s\", \"5m\" or an integer of ms), found %s",
                    dp__param_kind_name(it->kind));
    char err[256];
    uint64_t ms;
    if (dp_duration_parse(it->v.s, &ms, err, sizeof(err)) != DP_OK)
        return fail(p, key, DP_PARAM_BAD_VALUE, "%s", err);
    *out = ms;
    return DP_PARAM_OK;
}

int dp__params_list_count(const dp_params_t *p, const char *key, size_t *count)
{
    const struct param *it = find(p, key);
    if (!it)
        return DP_PARAM_ABSENT;
    if (it->kind != DP_PARAM_KIND_LIST)
        return wrong_type(p, key, it, DP_PARAM_KIND_LIST);
    *count = it->v.list.n;
    return DP_PARAM_OK;
}

int dp__params_list_item(const dp_params_t *p, const char *key, size_t index, const char **out)
{
    const struct param *it = find(p, key);
    if (!it)
        return DP_PARAM_ABSENT;
    if (it->kind != DP_PARAM_KIND_LIST)
        return wrong_type(p, key, it, DP_PARAM_KIND_LIST);
    if (index >= it->v.list.n)
        return fail(p, key, DP_PARAM_BAD_VALUE, "index %zu out of range (the list has %zu items)", index, it->v.list.n);
    *out = it->v.list.items[index];
    return DP_PARAM_OK;
}

int dp__params_get_group(const dp_params_t *p, const char *key, const dp_params_t **out)
{
    const struct param *it = find(p, key);
    if (!it)
        return DP_PARAM_ABSENT;
    if (it->kind != DP_PARAM_KIND_GROUP)
        return wrong_type(p, key, it, DP_PARAM_KIND_GROUP);
    *out = it->v.group;
    return DP_PARAM_OK;
}

size_t dp__params_count(const dp_params_t *p)
{
    return p ? p->n : 0;
}

const char *dp__params_key_at(const dp_params_t *p, size_t index)
{
    return p && index < p->n ? p->items[index].key : NULL;
}

dp_param_kind_t dp__params_kind(const dp_params_t *p, const char *key)
{
    const struct param *it = find(p, key);
    return it ? it->kind : (dp_param_kind_t)0;
}

int dp__params_check_known(const dp_params_t *p, const char *const *known, char *err, size_t errlen)
{
    if (!p)
        return 0;
    for (size_t i = 0; i < p->n; i++) {
        const char *key = p->items[i].key;
        const char *best = NULL;
        size_t best_d = SIZE_MAX;
        bool ok = false;
        for (size_t k = 0; known && known[k]; k++) {
            if (strcmp(known[k], key) == 0) {
                ok = true;
                break;
            }
            size_t d = dp__edit_distance(key, known[k]);
            if (d < best_d) {
                best_d = d;
                best = known[k];
            }
        }
        if (ok)
            continue;
        char origin[512], hint[256] = "";
        dp__params_origin(p, origin, sizeof(origin));
        if (best && best_d <= 2)
            snprintf(hint, sizeof(hint), " (did you mean '%s'?)", best);
        else if (known && known[0]) {
            /* No close match: list what is accepted instead. */
            size_t off = (size_t)snprintf(hint, sizeof(hint), " (known:");
            for (size_t k = 0; known[k] && off < sizeof(hint); k++)
                off += (size_t)snprintf(hint + off, sizeof(hint) - off, " %s", known[k]);
            if (off < sizeof(hint))
                snprintf(hint + off, sizeof(hint) - off, ")");
        }
        if (err && errlen)
            snprintf(err, errlen, "unknown param '%s%s%s'%s%s%s%s", p->path ? p->path : "", p->path ? "." : "", key,
                     origin[0] ? " (" : "", origin, origin[0] ? ")" : "", hint);
        return -1;
    }
    return 0;
}

const char *dp__params_error(const dp_params_t *p)
{
    return p ? p->diag->msg : NULL;
}

void dp__params_clear_error(const dp_params_t *p)
{
    if (!p)
        return;
    free(p->diag->msg);
    p->diag->msg = NULL;
}
