/* store.c - a thread-safe key/value store for auxiliary state.
 *
 * A chained hash table (FNV-1a, hash.h) under one mutex. Values are opaque bytes owned by the
 * store through a free function. Readers either copy a value out
 * (dp_store_get_copy) or look at it under the lock (dp_store_with), so no
 * pointer into the store escapes a concurrent delete.
 */
#include "store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "util.h"

typedef struct entry {
    struct entry *next;
    char *key;
    void *value;
    size_t len;
    dp_free_cb free_fn;
    uint64_t hash;
} entry_t;

struct dp_store {
    pthread_mutex_t mu;
    entry_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    dp_store_view_t *views; /* entries made when read (store.h): runs' snapshots */
    dp_store_hook_cb hook;  /* dp_store_set_hook: called under mu on each change */
    void *hook_user;
};

dp_store_t *dp_store_new(void)
{
    dp_store_t *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->nbuckets = 64;
    st->buckets = calloc(st->nbuckets, sizeof *st->buckets);
    if (!st->buckets) {
        free(st);
        return NULL;
    }
    pthread_mutex_init(&st->mu, NULL);
    return st;
}

static void entry_free(entry_t *e)
{
    if (e->free_fn)
        e->free_fn(e->value);
    free(e->key);
    free(e);
}

void dp_store_free(dp_store_t *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nbuckets; i++) {
        entry_t *e = st->buckets[i];
        while (e) {
            entry_t *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    free(st->buckets);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static entry_t **find_slot(dp_store_t *st, const char *key, uint64_t h)
{
    entry_t **pp = &st->buckets[h & (st->nbuckets - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

/* Under mu: the value a view makes for key into buf (its length), or -1
 * when no view has the key. */
static int view_value(dp_store_t *st, const char *key, char *buf, size_t size)
{
    static const size_t plen = sizeof DP_STORE_RUNNING_PREFIX - 1;
    if (!st->views || strncmp(key, DP_STORE_RUNNING_PREFIX, plen) != 0)
        return -1;
    for (dp_store_view_t *v = st->views; v; v = v->next) {
        int n = v->get(v->arg, key + plen, buf, size);
        if (n >= 0)
            return n;
    }
    return -1;
}

static void grow(dp_store_t *st)
{
    size_t n = st->nbuckets * 2;
    entry_t **b = calloc(n, sizeof *b);
    if (!b)
        return; /* keep the old table: slower, still correct */
    for (size_t i = 0; i < st->nbuckets; i++) {
        entry_t *e = st->buckets[i];
        while (e) {
            entry_t *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(st->buckets);
    st->buckets = b;
    st->nbuckets = n;
}

int dp_store_set(dp_store_t *st, const char *key, void *value, size_t len, dp_free_cb free_fn)
{
    if (!st || !key)
        return DP_EINVAL;
    uint64_t h = dp__hash_fnv1a(key);
    /* Allocate before taking the lock, and so that failure changes nothing. */
    entry_t *ne = malloc(sizeof *ne);
    char *k = strdup(key);
    if (!ne || !k) {
        free(ne);
        free(k);
        return DP_ENOMEM;
    }
    ne->key = k;
    ne->value = value;
    ne->len = len;
    ne->free_fn = free_fn;
    ne->hash = h;
    entry_t *old = NULL;
    pthread_mutex_lock(&st->mu);
    entry_t **pp = find_slot(st, key, h);
    if (*pp) {
        old = *pp;
        ne->next = old->next;
        *pp = ne;
    } else {
        ne->next = NULL;
        *pp = ne;
        if (++st->count > st->nbuckets)
            grow(st);
    }
    /* Under the lock, so that the hook sees the changes in the order they
     * were made (a set and a delete of one key racing must not reach the
     * disk the other way round). */
    if (st->hook)
        st->hook(st->hook_user, key, value, len, false);
    pthread_mutex_unlock(&st->mu);
    /* Free outside the lock: a free function may be slow. */
    if (old)
        entry_free(old);
    return DP_OK;
}

int dp_store_set_copy(dp_store_t *st, const char *key, const void *data, size_t len)
{
    if (!st || !key || (!data && len))
        return DP_EINVAL;
    char *copy = malloc(len + 1);
    if (!copy)
        return DP_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    int rc = dp_store_set(st, key, copy, len, free);
    if (rc != DP_OK)
        free(copy);
    return rc;
}

int dp_store_get_copy(dp_store_t *st, const char *key, void **out, size_t *len)
{
    if (!st || !key || !out)
        return DP_EINVAL;
    uint64_t h = dp__hash_fnv1a(key);
    int rc = DP_OK;
    char vbuf[DP_STORE_VIEW_VALUE_MAX];
    pthread_mutex_lock(&st->mu);
    int vn = view_value(st, key, vbuf, sizeof vbuf);
    entry_t ve = {.value = vbuf, .len = vn < 0 ? 0 : (size_t)vn};
    entry_t *e = vn >= 0 ? &ve : *find_slot(st, key, h);
    if (!e) {
        rc = DP_ENOTFOUND;
    } else {
        char *copy = malloc(e->len + 1);
        if (!copy) {
            rc = DP_ENOMEM;
        } else {
            if (e->len)
                memcpy(copy, e->value, e->len);
            copy[e->len] = '\0';
            *out = copy;
            if (len)
                *len = e->len;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int dp_store_with(dp_store_t *st, const char *key, void (*fn)(const void *value, size_t len, void *arg), void *arg)
{
    if (!st || !key || !fn)
        return DP_EINVAL;
    uint64_t h = dp__hash_fnv1a(key);
    char vbuf[DP_STORE_VIEW_VALUE_MAX];
    pthread_mutex_lock(&st->mu);
    int vn = view_value(st, key, vbuf, sizeof vbuf);
    entry_t ve = {.value = vbuf, .len = vn < 0 ? 0 : (size_t)vn};
    entry_t *e = vn >= 0 ? &ve : *find_slot(st, key, h);
    if (e)
        fn(e->value, e->len, arg);
    pthread_mutex_unlock(&st->mu);
    return e ? DP_OK : DP_ENOTFOUND;
}

int dp_store_delete(dp_store_t *st, const char *key)
{
    if (!st || !key)
        return DP_EINVAL;
    uint64_t h = dp__hash_fnv1a(key);
    pthread_mutex_lock(&st->mu);
    entry_t **pp = find_slot(st, key, h);
    entry_t *e = *pp;
    if (e) {
        *pp = e->next;
        st->count--;
        if (st->hook)
            st->hook(st->hook_user, key, NULL, 0, true);
    }
    pthread_mutex_unlock(&st->mu);
    if (!e)
        return DP_ENOTFOUND;
    entry_free(e);
    return DP_OK;
}

/* What views add to a read of the whole store: their entries, as items
 * with their own key and value. */
typedef struct item {
    const char *key;
    const void *value;
    size_t len;
    bool made; /* a view's: key and value malloc'd, one block */
} item_t;

typedef struct items {
    dp_store_t *st;
    item_t *v;
    size_t n, cap;
    size_t hidden; /* entries of the table that a view's entry hides */
    bool oom;
} items_t;

static int collect_view_entry(void *a, const char *name, const char *value, size_t len)
{
    items_t *it = a;
    if (it->n == it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 16;
        item_t *v = realloc(it->v, cap * sizeof *v);
        if (!v) {
            it->oom = true;
            return 1;
        }
        it->v = v;
        it->cap = cap;
    }
    size_t plen = sizeof DP_STORE_RUNNING_PREFIX - 1, nlen = strlen(name);
    char *b = malloc(plen + nlen + 1 + len + 1);
    if (!b) {
        it->oom = true;
        return 1;
    }
    memcpy(b, DP_STORE_RUNNING_PREFIX, plen);
    memcpy(b + plen, name, nlen + 1);
    char *val = b + plen + nlen + 1;
    memcpy(val, value, len);
    val[len] = '\0';
    if (*find_slot(it->st, b, dp__hash_fnv1a(b)))
        it->hidden++;
    it->v[it->n++] = (item_t){.key = b, .value = val, .len = len, .made = true};
    return 0;
}

/* Under mu: the views' entries (first in it->v), and how many of the
 * table's they hide. False without memory. */
static bool collect_views(dp_store_t *st, items_t *it)
{
    *it = (items_t){.st = st};
    for (dp_store_view_t *v = st->views; v && !it->oom; v = v->next)
        v->each(v->arg, collect_view_entry, it);
    return !it->oom;
}

static void items_free(items_t *it)
{
    for (size_t i = 0; i < it->n; i++)
        if (it->v[i].made)
            free((void *)(uintptr_t)it->v[i].key);
    free(it->v);
}

size_t dp_store_count(dp_store_t *st)
{
    if (!st)
        return 0;
    pthread_mutex_lock(&st->mu);
    size_t n = st->count;
    if (st->views) {
        items_t it;
        if (collect_views(st, &it))
            n += it.n - it.hidden;
        items_free(&it);
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

/* Key order; a view's entry before the table's of the same key (which it
 * hides). */
static int cmp_item(const void *a, const void *b)
{
    const item_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (int)y->made - (int)x->made;
}

int dp_store_foreach(dp_store_t *st, int (*fn)(const char *key, const void *value, size_t len, void *arg), void *arg)
{
    if (!st || !fn)
        return DP_EINVAL;
    pthread_mutex_lock(&st->mu);
    items_t it = {.st = st};
    if (st->views && !collect_views(st, &it)) {
        items_free(&it);
        pthread_mutex_unlock(&st->mu);
        return DP_ENOMEM;
    }
    size_t total = it.n + st->count;
    if (total > it.cap) {
        item_t *v = realloc(it.v, total * sizeof *v);
        if (!v) {
            items_free(&it);
            pthread_mutex_unlock(&st->mu);
            return DP_ENOMEM;
        }
        it.v = v;
        it.cap = total;
    }
    size_t nviews = it.n;
    for (size_t i = 0; i < st->nbuckets; i++)
        for (entry_t *e = st->buckets[i]; e; e = e->next)
            it.v[it.n++] = (item_t){.key = e->key, .value = e->value, .len = e->len};
    if (it.n > 1)
        qsort(it.v, it.n, sizeof *it.v, cmp_item);
    int rc = 0;
    for (size_t i = 0; i < it.n && rc == 0; i++)
        if (!(nviews && i > 0 && !it.v[i].made && strcmp(it.v[i - 1].key, it.v[i].key) == 0))
            rc = fn(it.v[i].key, it.v[i].value, it.v[i].len, arg);
    pthread_mutex_unlock(&st->mu);
    items_free(&it);
    return rc;
}

void dp__store_view_attach(dp_store_t *st, dp_store_view_t *v)
{
    pthread_mutex_lock(&st->mu);
    v->next = st->views;
    st->views = v;
    pthread_mutex_unlock(&st->mu);
}

void dp__store_view_detach(dp_store_t *st, dp_store_view_t *v)
{
    pthread_mutex_lock(&st->mu);
    for (dp_store_view_t **pp = &st->views; *pp; pp = &(*pp)->next)
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    pthread_mutex_unlock(&st->mu);
}

void dp__store_lock(dp_store_t *st)
{
    pthread_mutex_lock(&st->mu);
}

void dp__store_unlock(dp_store_t *st)
{
    pthread_mutex_unlock(&st->mu);
}

void dp_store_set_hook(dp_store_t *st, dp_store_hook_cb hook, void *user)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->mu);
    st->hook = hook;
    st->hook_user = user;
    pthread_mutex_unlock(&st->mu);
}
