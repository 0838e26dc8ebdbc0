/* state_hash.c - a job's definition hash, for --resume (docs/state.md,
 * "Definition hash"): a job whose hash differs from the one recorded with
 * its last success runs again.
 *
 * It covers, in this order, each item length-prefixed so that no two
 * definitions serialise alike: the job's type ("core.sleep"); its params,
 * keys sorted (a reordering in the file changes nothing), each key with its
 * kind and value (strings and list items as bytes, integers in decimal,
 * floats as their IEEE 754 bits, booleans as 0/1, nested groups the same
 * way, recursively); the names of its direct dependencies, sorted; and its
 * settings after defaults are applied: timeout, retries, backoff (initial,
 * factor, max, jitter), readiness (period, probe_timeout, timeout),
 * isolation and limits (cpu, memory, open_files). Not covered: the job's
 * name (the key it is recorded under), the plugin's code or version, the
 * workflow-level settings (max_concurrent_jobs, timeout, fail_fast) and
 * anything outside the workflow file (the environment, files a job reads).
 * Numbers are 8 bytes, little-endian. The hash is 64-bit FNV-1a. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "params.h"
#include "state.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static void mix(uint64_t *h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        *h ^= p[i];
        *h *= FNV_PRIME;
    }
}

/* One item: its length (8 bytes, little-endian) then its bytes. */
static void item(uint64_t *h, const void *data, size_t len)
{
    unsigned char n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (unsigned char)((uint64_t)len >> (8 * i));
    mix(h, n, sizeof n);
    mix(h, data, len);
}

static void item_str(uint64_t *h, const char *s)
{
    item(h, s ? s : "", s ? strlen(s) : 0);
}

static void item_u64(uint64_t *h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    item(h, b, sizeof b);
}

static void item_f64(uint64_t *h, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    item_u64(h, bits);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void mix_params(uint64_t *h, const dp_params_t *p)
{
    size_t n = p ? dp__params_count(p) : 0;
    item_u64(h, n);
    if (!n)
        return;
    const char *small[16];
    const char **keys = n <= 16 ? small : malloc(n * sizeof *keys);
    if (!keys) { /* out of memory: a hash that matches nothing recorded */
        item_str(h, "\x01oom");
        return;
    }
    for (size_t i = 0; i < n; i++)
        keys[i] = dp__params_key_at(p, i);
    if (n > 1)
        qsort(keys, n, sizeof *keys, cmp_str);
    for (size_t i = 0; i < n; i++) {
        const char *k = keys[i];
        dp_param_kind_t kind = dp__params_kind(p, k);
        item_str(h, k);
        item_u64(h, (uint64_t)kind);
        switch (kind) {
        case DP_PARAM_KIND_STRING: {
            const char *s = NULL;
            dp__params_get_string(p, k, &s);
            item_str(h, s);
            break;
        }
        case DP_PARAM_KIND_INT: {
            int64_t v = 0;
            dp__params_get_int(p, k, &v);
            item_u64(h, (uint64_t)v);
            break;
        }
        case DP_PARAM_KIND_FLOAT: {
            double v = 0;
            dp__params_get_float(p, k, &v);
            item_f64(h, v);
            break;
        }
        case DP_PARAM_KIND_BOOL: {
            int v = 0;
            dp__params_get_bool(p, k, &v);
            item_u64(h, v ? 1 : 0);
            break;
        }
        case DP_PARAM_KIND_LIST: {
            size_t c = 0;
            dp__params_list_count(p, k, &c);
            item_u64(h, c);
            for (size_t j = 0; j < c; j++) {
                const char *s = NULL;
                dp__params_list_item(p, k, j, &s);
                item_str(h, s);
            }
            break;
        }
        case DP_PARAM_KIND_GROUP: {
            const dp_params_t *sub = NULL;
            dp__params_get_group(p, k, &sub);
            mix_params(h, sub);
            break;
        }
        }
    }
    if (keys != small)
        free(keys);
}

uint64_t cli_state_def_hash(const dp_workflow_t *wf, const dp_graph_t *g, size_t id)
{
    uint64_t h = FNV_OFFSET;
    const char *name = dp_graph_job_name(g, id);
    const char *type = NULL;
    const dp_params_t *params = NULL;
    const dp_job_spec_t *s = NULL;
    dp__workflow_job_def(wf, name, &type, &params, &s);
    item_str(&h, "daggerpool-def-1"); /* the serialisation's version */
    item_str(&h, type);
    mix_params(&h, params);
    const uint32_t *deps;
    size_t nd = dp_graph_deps(g, id, &deps);
    item_u64(&h, nd);
    /* ids are in name order after validate for a file's graph: the names
     * come out sorted; sort anyway so the hash never depends on ids. */
    const char *small[16];
    const char **names = nd <= 16 ? small : malloc(nd * sizeof *names);
    if (!names) {
        item_str(&h, "\x01oom");
    } else {
        for (size_t i = 0; i < nd; i++)
            names[i] = dp_graph_job_name(g, deps[i]);
        if (nd > 1)
            qsort(names, nd, sizeof *names, cmp_str);
        for (size_t i = 0; i < nd; i++)
            item_str(&h, names[i]);
        if (names != small)
            free(names);
    }
    if (s) {
        item_u64(&h, s->timeout_ms);
        item_u64(&h, s->retries);
        item_u64(&h, s->backoff.initial_ms);
        item_f64(&h, s->backoff.factor);
        item_u64(&h, s->backoff.max_ms);
        item_f64(&h, s->backoff.jitter);
        item_u64(&h, s->readiness.period_ms);
        item_u64(&h, s->readiness.probe_timeout_ms);
        item_u64(&h, s->readiness.timeout_ms);
        item_u64(&h, (uint64_t)s->isolation);
        item_u64(&h, s->limits.cpu_ms);
        item_u64(&h, s->limits.memory_bytes);
        item_u64(&h, s->limits.open_files);
        /* Settings added after the first ones, mixed in only when set, so
         * that a job without them keeps the hash it had before they
         * existed. Pools and priority are left out: they decide when a job
         * starts, not what it does. */
        const dp_readiness_ext_t *x = &s->readiness_ext;
        if (x->initial_delay_ms || x->success_threshold > 1 || x->failure_threshold > 1 || x->backoff > 1 ||
            x->max_period_ms) {
            item_str(&h, "readiness_ext");
            item_u64(&h, x->initial_delay_ms);
            item_u64(&h, x->success_threshold);
            item_u64(&h, x->failure_threshold);
            item_f64(&h, x->backoff);
            item_u64(&h, x->max_period_ms);
        }
        if (s->deadline_ms) {
            item_str(&h, "deadline");
            item_u64(&h, s->deadline_ms);
        }
        if (s->run_if != DP_RUN_IF_ALL_SUCCESS || s->continue_on_failure || s->cleanup_timeout_ms) {
            item_str(&h, "rules");
            item_u64(&h, (uint64_t)s->run_if);
            item_u64(&h, s->continue_on_failure ? 1 : 0);
            item_u64(&h, s->cleanup_timeout_ms);
        }
    }
    return h;
}
