/* state_hash.c - a job's definition hash, for --resume (docs/state.md,
 * "Definition hash"): a job whose hash differs from the one recorded with
 * its last success runs again.
 *
 * It covers, in this order: the job's type ("core.sleep"); its params,
 * whatever their order in the file, each key with its kind and value
 * (strings and list items as bytes, integers, floats as their IEEE 754
 * bits, booleans as 0/1, nested groups the same way, recursively); the
 * names of its direct dependencies, whatever their order; and its settings
 * after defaults are applied: timeout, retries, backoff (initial, factor,
 * max, jitter), readiness (period, probe_timeout, timeout), isolation and
 * limits (cpu, memory, open_files), then the later settings where set. Not
 * covered: the job's name (the key it is recorded under), the plugin's
 * code or version, the workflow-level settings (max_concurrent_jobs,
 * timeout, fail_fast) and anything outside the workflow file (the
 * environment, files a job reads).
 *
 * Two versions compute it; a state file keeps the one it was made with
 * (meta `def_hash`), so that the hashes it recorded still compare:
 *
 * 1. 64-bit FNV-1a, byte by byte, over each item length-prefixed (numbers
 *    8 bytes, little-endian), params by sorted key, dependencies by sorted
 *    name. Files made before version 2 keep it.
 * 2. The same items as 64-bit words (a string: its length, then its bytes
 *    8 at a time, the last word zero-padded), each mixed in with a
 *    multiply and a shift; params and dependencies, whose order must not
 *    count, each hashed alone and summed. About an eighth of version 1's
 *    cost for a whole graph (bench/README.md, "State"): every dependency's name is
 *    hashed once, not once per job that depends on it. New files get it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "params.h"
#include "state.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

/* FNV_PRIME to the power k, modulo 2^64. */
static const uint64_t prime_pow[17] = {
    0x0000000000000001ull, 0x00000100000001b3ull, 0x000366000002e329ull, 0x08a97b0004e7feabull, 0x9ffaac085635bc91ull,
    0x0caee32a7d4f6a63ull, 0xdc966432edf1c639ull, 0xc5527b8a51d3d2dbull, 0x1efac7090aef4a21ull, 0x936a555d949af613ull,
    0x18a5210383502249ull, 0x30b961f8212a420bull, 0xf54383a05ace38b1ull, 0x8ff15a7a4c6a54c3ull, 0x017180cfd8ae0759ull,
    0x21e53a2d2fb67c3bull, 0x4efe15c813151841ull};

/* FNV-1a, byte by byte: h = (h ^ byte) * FNV_PRIME. A zero byte leaves
 * the xor out, so a run of k zero bytes is one multiplication by
 * FNV_PRIME^k: the same hash, with a multiplication per run instead of
 * per byte. Most of what is hashed is zeros (the 8-byte lengths and
 * numbers), and the multiplications, one after the other, were the cost
 * of hashing a 100 000-job workflow (bench/README.md, "State").
 *
 * The 8 bytes of v, little-endian: a step per byte up to the last
 * non-zero one, then the zeros above it as one multiplication (a length
 * or a small number: two multiplications, and no branch on each byte). */
static uint64_t mix_u64(uint64_t x, uint64_t v)
{
    int k = 0;
    for (; v; v >>= 8, k++)
        x = (x ^ (v & 0xff)) * FNV_PRIME;
    return x * prime_pow[8 - k];
}

/* One item: its length (8 bytes, little-endian) then its bytes; a
 * string's bytes are never zero, so a step each, with no test for runs
 * of zeros. */
static void item_str(uint64_t *h, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t len = strlen((const char *)p);
    uint64_t x = mix_u64(*h, (uint64_t)len);
    for (size_t i = 0; i < len; i++)
        x = (x ^ p[i]) * FNV_PRIME;
    *h = x;
}

static void item_u64(uint64_t *h, uint64_t v)
{
    *h = mix_u64(mix_u64(*h, 8), v);
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

/* Sorts names (strcmp order): by insertion when they are few (a job's
 * dependencies, a group's keys: no call per comparison), else qsort. */
static void sort_names(const char **v, size_t n)
{
    if (n > 16) {
        qsort(v, n, sizeof *v, cmp_str);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        const char *x = v[i];
        size_t j = i;
        while (j > 0 && strcmp(v[j - 1], x) > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
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
    sort_names(keys, n);
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

static uint64_t def_hash_v1(const dp_workflow_t *wf, const dp_graph_t *g, size_t id)
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
        sort_names(names, nd);
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

/* ---- version 2 ---------------------------------------------------------- */

/* One word into h: xor, multiply by an odd constant, fold the high half
 * down. Each step is one-to-one in h and in w, so a sequence that differs
 * in one word always hashes differently. */
static inline uint64_t w_mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}

/* The final avalanche of a sum's term (MurmurHash3's fmix64). */
static inline uint64_t w_fin(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static uint64_t w_str(uint64_t h, const char *s)
{
    size_t len = s ? strlen(s) : 0, i = 0;
    h = w_mix(h, (uint64_t)len);
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = w_mix(h, w);
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, s + i, len - i);
        h = w_mix(h, w);
    }
    return h;
}

static uint64_t w_f64(uint64_t h, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return w_mix(h, bits);
}

#define W_SEED 0x243f6a8885a308d3ull /* a definition's */
#define W_ITEM 0x13198a2e03707344ull /* a param's, hashed alone */
#define W_NAME 0xa4093822299f31d0ull /* a dependency's name, hashed alone */

/* The params as one word: each key, kind and value hashed alone, the
 * terms summed (their order in the file does not count), then the count. */
static uint64_t w_params(const dp_params_t *p)
{
    size_t n = p ? dp__params_count(p) : 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = dp__params_key_at(p, i);
        dp_param_kind_t kind = dp__params_kind(p, k);
        uint64_t h = w_mix(w_str(W_ITEM, k), (uint64_t)kind);
        switch (kind) {
        case DP_PARAM_KIND_STRING: {
            const char *s = NULL;
            dp__params_get_string(p, k, &s);
            h = w_str(h, s);
            break;
        }
        case DP_PARAM_KIND_INT: {
            int64_t v = 0;
            dp__params_get_int(p, k, &v);
            h = w_mix(h, (uint64_t)v);
            break;
        }
        case DP_PARAM_KIND_FLOAT: {
            double v = 0;
            dp__params_get_float(p, k, &v);
            h = w_f64(h, v);
            break;
        }
        case DP_PARAM_KIND_BOOL: {
            int v = 0;
            dp__params_get_bool(p, k, &v);
            h = w_mix(h, v ? 1 : 0);
            break;
        }
        case DP_PARAM_KIND_LIST: { /* in its order: a list's order counts */
            size_t c = 0;
            dp__params_list_count(p, k, &c);
            h = w_mix(h, c);
            for (size_t j = 0; j < c; j++) {
                const char *s = NULL;
                dp__params_list_item(p, k, j, &s);
                h = w_str(h, s);
            }
            break;
        }
        case DP_PARAM_KIND_GROUP: {
            const dp_params_t *sub = NULL;
            dp__params_get_group(p, k, &sub);
            h = w_mix(h, w_params(sub));
            break;
        }
        }
        sum += w_fin(h);
    }
    return w_mix(w_mix(W_SEED, n), sum);
}

static uint64_t name_hash(const char *name)
{
    return w_fin(w_str(W_NAME, name));
}

/* names: every job's name_hash, by id, or NULL (hashed here). */
static uint64_t def_hash_v2(const dp_workflow_t *wf, const dp_graph_t *g, size_t id, const uint64_t *names)
{
    const char *type = NULL;
    const dp_params_t *params = NULL;
    const dp_job_spec_t *s = NULL;
    dp__workflow_job_def(wf, dp_graph_job_name(g, id), &type, &params, &s);
    uint64_t h = w_str(W_SEED, "daggerpool-def-2");
    h = w_str(h, type);
    h = w_mix(h, w_params(params));
    const uint32_t *deps;
    size_t nd = dp_graph_deps(g, id, &deps);
    uint64_t sum = 0;
    for (size_t i = 0; i < nd; i++)
        sum += names ? names[deps[i]] : name_hash(dp_graph_job_name(g, deps[i]));
    h = w_mix(w_mix(h, nd), sum);
    if (s) {
        h = w_mix(h, s->timeout_ms);
        h = w_mix(h, s->retries);
        h = w_mix(h, s->backoff.initial_ms);
        h = w_f64(h, s->backoff.factor);
        h = w_mix(h, s->backoff.max_ms);
        h = w_f64(h, s->backoff.jitter);
        h = w_mix(h, s->readiness.period_ms);
        h = w_mix(h, s->readiness.probe_timeout_ms);
        h = w_mix(h, s->readiness.timeout_ms);
        h = w_mix(h, (uint64_t)s->isolation);
        h = w_mix(h, s->limits.cpu_ms);
        h = w_mix(h, s->limits.memory_bytes);
        h = w_mix(h, s->limits.open_files);
        /* Later settings only where set, as in version 1: a job without
         * them keeps its hash when a daggerpool adds another. */
        const dp_readiness_ext_t *x = &s->readiness_ext;
        if (x->initial_delay_ms || x->success_threshold > 1 || x->failure_threshold > 1 || x->backoff > 1 ||
            x->max_period_ms) {
            h = w_str(h, "readiness_ext");
            h = w_mix(h, x->initial_delay_ms);
            h = w_mix(h, x->success_threshold);
            h = w_mix(h, x->failure_threshold);
            h = w_f64(h, x->backoff);
            h = w_mix(h, x->max_period_ms);
        }
        if (s->deadline_ms) {
            h = w_str(h, "deadline");
            h = w_mix(h, s->deadline_ms);
        }
        if (s->run_if != DP_RUN_IF_ALL_SUCCESS || s->continue_on_failure || s->cleanup_timeout_ms) {
            h = w_str(h, "rules");
            h = w_mix(h, (uint64_t)s->run_if);
            h = w_mix(h, s->continue_on_failure ? 1 : 0);
            h = w_mix(h, s->cleanup_timeout_ms);
        }
    }
    return w_fin(h);
}

uint64_t cli_state_def_hash(int version, const dp_workflow_t *wf, const dp_graph_t *g, size_t id)
{
    return version >= 2 ? def_hash_v2(wf, g, id, NULL) : def_hash_v1(wf, g, id);
}

bool cli_state_def_hashes(int version, const dp_workflow_t *wf, const dp_graph_t *g, uint64_t *out)
{
    size_t n = dp_graph_job_count(g);
    if (version < 2) {
        for (size_t i = 0; i < n; i++)
            out[i] = def_hash_v1(wf, g, i);
        return true;
    }
    uint64_t *names = malloc((n ? n : 1) * sizeof *names);
    if (!names)
        return false;
    for (size_t i = 0; i < n; i++)
        names[i] = name_hash(dp_graph_job_name(g, i));
    for (size_t i = 0; i < n; i++)
        out[i] = def_hash_v2(wf, g, i, names);
    free(names);
    return true;
}

/* ---- the key of a workflow's hashes ------------------------------------ */

/* Two 64-bit lanes over 8-byte words, each a multiply and a shift per
 * word: reading the file's bytes costs far less than the definition hashes
 * it saves (bench/README.md, "State"). Not a
 * cryptographic hash: the key guards against a file that changed, not
 * against an author who forges a collision with their own workflow. */
typedef struct key_hash {
    uint64_t a, b;
} key_hash_t;

static void key_word(key_hash_t *k, uint64_t w)
{
    k->a = w_mix(k->a, w);
    k->b = (k->b + w) * 0xc2b2ae3d27d4eb4full;
    k->b ^= k->b >> 29;
}

static void key_bytes(key_hash_t *k, const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        key_word(k, w);
    }
    uint64_t w = 0;
    memcpy(&w, p + i, n - i);
    key_word(k, w);
}

/* The process's start, Unix ms, to the clock tick: /proc/self/stat
 * gives it in ticks since boot (CLOCK_BOOTTIME); 0 when unknown. */
static uint64_t process_start_ms(void)
{
    char buf[1024];
    unsigned long long ticks = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command's name may hold spaces */
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    long hz = sysconf(_SC_CLK_TCK);
    struct timespec real, boot;
    if (!p || sscanf(p + 1, "%llu", &ticks) != 1 || hz <= 0 || clock_gettime(CLOCK_REALTIME, &real) != 0 ||
        clock_gettime(CLOCK_BOOTTIME, &boot) != 0)
        return 0;
    uint64_t real_ms = (uint64_t)real.tv_sec * 1000u + (uint64_t)real.tv_nsec / 1000000u;
    uint64_t boot_ms = (uint64_t)boot.tv_sec * 1000u + (uint64_t)boot.tv_nsec / 1000000u;
    uint64_t start_boot_ms = ticks * 1000u / (unsigned long long)hz;
    return start_boot_ms <= boot_ms && boot_ms - start_boot_ms < real_ms ? real_ms - (boot_ms - start_boot_ms) : 0;
}

/* Mixes the file at path (its length, then its bytes) into k. False when
 * it cannot be read, or changed less than two seconds before this process
 * started or after (its ctime, which no one can set back): then the
 * bytes read now may not be those the workflow was read from. */
static bool key_file(key_hash_t *k, const char *path, uint64_t start_ms)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0)
        return false;
    bool ok = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
              (uint64_t)sb.st_ctim.tv_sec * 1000u + (uint64_t)sb.st_ctim.tv_nsec / 1000000u + 2000u < start_ms;
    unsigned char *buf = ok ? malloc(1 << 16) : NULL;
    uint64_t total = 0;
    ok = buf != NULL;
    while (ok) {
        ssize_t r = read(fd, buf, 1 << 16);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ok = r == 0;
            break;
        }
        /* whole words within a chunk: the chunks are multiples of 8 */
        key_bytes(k, buf, (size_t)r);
        total += (uint64_t)r;
    }
    free(buf);
    close(fd);
    key_word(k, total);
    return ok && total == (uint64_t)sb.st_size;
}

bool cli_state_defs_key(int version, const dp_workflow_t *wf, size_t njobs, char key[CLI_STATE_DEFS_KEY_LEN + 1])
{
    uint64_t start = process_start_ms();
    const char *path = dp__workflow_path(wf);
    if (!start || !path)
        return false;
    key_hash_t k = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull};
    char head[256];
    int n = snprintf(head, sizeof head, "daggerpool-def-%d %s %zu", version, dp_version(), njobs);
    key_bytes(&k, (const unsigned char *)head, (size_t)n);
    if (!key_file(&k, path, start))
        return false;
    size_t ninc;
    const char *const *inc = dp__workflow_includes(wf, &ninc);
    for (size_t i = 0; i < ninc; i++)
        if (!key_file(&k, inc[i], start))
            return false;
    snprintf(key, CLI_STATE_DEFS_KEY_LEN + 1, "%016llx%016llx", (unsigned long long)k.a, (unsigned long long)k.b);
    return true;
}
