/* fuzz_params.c - the param setters and the typed getters plugins read
 * params through (host/src/params.c), driven by a small byte program.
 *
 * Each op byte picks a setter (string, int, float, bool, list, nested
 * group, origin) or a getter, with keys and values taken from the input.
 * Invariants: a getter agrees with the kind of the value (OK only for its
 * kind, and float also for an integer), a negative return leaves a message,
 * a duration getter agrees with dp_duration_parse, key_at(count) is NULL,
 * a clone has the same keys, and check_known accepts exactly when every key
 * is known. ASan and UBSan watch the rest. */
#include <math.h>
#include <string.h>

#include "daggerpool/daggerpool.h"
#include "daggerpool/plugin.h"
#include "fuzz.h"
#include "params.h"

typedef struct {
    const uint8_t *p;
    size_t n;
} input_t;

static uint8_t byte(input_t *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint64_t u64(input_t *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | byte(in);
    return v;
}

/* A string of up to 63 bytes (NUL-terminated; may be empty). */
static void str(input_t *in, char *buf)
{
    size_t len = byte(in) % 64;
    size_t i;
    for (i = 0; i < len && in->n; i++) {
        buf[i] = (char)byte(in);
        if (!buf[i])
            buf[i] = 'k';
    }
    buf[i] = '\0';
}

/* Keys come from a small alphabet so that getters hit set keys often. */
static void key(input_t *in, char *buf)
{
    static const char *const common[] = {"a", "b", "duration", "port", "env", "argv", "", "x.y"};
    uint8_t b = byte(in);
    if (b < 200)
        snprintf(buf, 64, "%s", common[b % 8]);
    else
        str(in, buf);
}

static void check_getters(const dp_params_t *root, const dp_params_t *p, const char *k)
{
    dp_param_kind_t kind = dp__params_kind(p, k);
    const char *s = NULL;
    int64_t i = 0;
    double f = 0;
    int b = 0;
    uint64_t ms = 0;
    size_t count = 0;
    const dp_params_t *g = NULL;

    int rc = dp__params_get_string(p, k, &s);
    FUZZ_CHECK(kind ? (rc == DP_PARAM_OK) == (kind == DP_PARAM_KIND_STRING) : rc == DP_PARAM_ABSENT);
    if (rc == DP_PARAM_OK)
        FUZZ_CHECK(s && strlen(s) < 64);
    if (rc < 0)
        FUZZ_CHECK(dp__params_error(root) != NULL);

    rc = dp__params_get_int(p, k, &i);
    FUZZ_CHECK(kind ? (rc == DP_PARAM_OK) == (kind == DP_PARAM_KIND_INT) : rc == DP_PARAM_ABSENT);
    rc = dp__params_get_float(p, k, &f);
    FUZZ_CHECK(kind ? (rc == DP_PARAM_OK) == (kind == DP_PARAM_KIND_FLOAT || kind == DP_PARAM_KIND_INT)
                    : rc == DP_PARAM_ABSENT);
    rc = dp__params_get_bool(p, k, &b);
    FUZZ_CHECK(kind ? (rc == DP_PARAM_OK) == (kind == DP_PARAM_KIND_BOOL) : rc == DP_PARAM_ABSENT);
    if (rc == DP_PARAM_OK)
        FUZZ_CHECK(b == 0 || b == 1);

    dp__params_clear_error(root);
    rc = dp__params_get_duration_ms(p, k, &ms);
    if (!kind) {
        FUZZ_CHECK(rc == DP_PARAM_ABSENT);
    } else if (kind == DP_PARAM_KIND_STRING) {
        uint64_t want = 0;
        int prc = dp_duration_parse(s, &want, NULL, 0);
        FUZZ_CHECK((rc == DP_PARAM_OK) == (prc == DP_OK));
        FUZZ_CHECK(rc == DP_PARAM_OK ? ms == want : rc == DP_PARAM_BAD_VALUE);
    } else if (kind == DP_PARAM_KIND_INT) {
        FUZZ_CHECK(rc == (i < 0 ? DP_PARAM_BAD_VALUE : DP_PARAM_OK));
    } else {
        FUZZ_CHECK(rc == DP_PARAM_WRONG_TYPE);
    }
    FUZZ_CHECK((rc < 0) == (dp__params_error(root) != NULL));

    rc = dp__params_list_count(p, k, &count);
    FUZZ_CHECK(kind ? (rc == DP_PARAM_OK) == (kind == DP_PARAM_KIND_LIST) : rc == DP_PARAM_ABSENT);
    if (rc == DP_PARAM_OK) {
        for (size_t j = 0; j < count; j++) {
            const char *item = NULL;
            FUZZ_CHECK(dp__params_list_item(p, k, j, &item) == DP_PARAM_OK && item);
            FUZZ_CHECK(strlen(item) < 64);
        }
        const char *item = NULL;
        FUZZ_CHECK(dp__params_list_item(p, k, count, &item) == DP_PARAM_BAD_VALUE);
        FUZZ_CHECK(dp__params_list_item(p, k, SIZE_MAX, &item) == DP_PARAM_BAD_VALUE);
    }
    rc = dp__params_get_group(p, k, &g);
    FUZZ_CHECK(kind ? (rc == DP_PARAM_OK) == (kind == DP_PARAM_KIND_GROUP) : rc == DP_PARAM_ABSENT);
    if (rc == DP_PARAM_OK)
        FUZZ_CHECK(g != NULL);
}

static void same_keys(const dp_params_t *a, const dp_params_t *b, int depth)
{
    size_t n = dp__params_count(a);
    FUZZ_CHECK(n == dp__params_count(b));
    for (size_t i = 0; i < n; i++) {
        const char *k = dp__params_key_at(a, i);
        FUZZ_CHECK(k && strcmp(k, dp__params_key_at(b, i)) == 0);
        FUZZ_CHECK(dp__params_kind(a, k) == dp__params_kind(b, k));
        const dp_params_t *ga, *gb;
        if (depth < 16 && dp__params_get_group(a, k, &ga) == DP_PARAM_OK &&
            dp__params_get_group(b, k, &gb) == DP_PARAM_OK)
            same_keys(ga, gb, depth + 1);
    }
    FUZZ_CHECK(dp__params_key_at(a, n) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    input_t in = {data, size};
    dp_params_t *root = dp_params_new();
    if (!root)
        return 0;
    dp_params_t *stack[8] = {root};
    int top = 0;
    char k[256], v[256], known_buf[4][64];
    const char *items[8];
    char item_buf[8][64];
    unsigned ops = 0;

    while (in.n && ops++ < 256) {
        dp_params_t *cur = stack[top];
        uint8_t op = byte(&in) % 16;
        switch (op) {
        case 0:
            key(&in, k);
            str(&in, v);
            dp_params_set_string(cur, k, v);
            break;
        case 1:
            key(&in, k);
            dp_params_set_int(cur, k, (int64_t)u64(&in));
            break;
        case 2: {
            key(&in, k);
            uint64_t bits = u64(&in);
            double d;
            memcpy(&d, &bits, sizeof d);
            dp_params_set_float(cur, k, d);
            break;
        }
        case 3:
            key(&in, k);
            dp_params_set_bool(cur, k, byte(&in) & 1);
            break;
        case 4: {
            key(&in, k);
            size_t n = byte(&in) % 8;
            for (size_t j = 0; j < n; j++) {
                str(&in, item_buf[j]);
                items[j] = item_buf[j];
            }
            dp_params_set_list(cur, k, n ? items : NULL, n);
            break;
        }
        case 5: {
            key(&in, k);
            dp_params_t *g = dp_params_add_group(cur, k);
            if (g && top < 7)
                stack[++top] = g;
            break;
        }
        case 6:
            if (top > 0)
                top--;
            break;
        case 7: {
            str(&in, v);
            int line = (int)(int32_t)(uint32_t)u64(&in);
            dp_params_set_origin(cur, byte(&in) & 1 ? v : NULL, line);
            break;
        }
        case 8:
        case 9:
        case 10:
            key(&in, k);
            check_getters(root, cur, k);
            break;
        case 11: {
            /* Every key of cur, through every getter. */
            for (size_t j = 0; j < dp__params_count(cur); j++)
                check_getters(root, cur, dp__params_key_at(cur, j));
            FUZZ_CHECK(dp__params_key_at(cur, dp__params_count(cur)) == NULL);
            break;
        }
        case 12: {
            size_t n = byte(&in) % 4;
            const char *known[5];
            for (size_t j = 0; j < n; j++) {
                key(&in, known_buf[j]);
                known[j] = known_buf[j];
            }
            known[n] = NULL;
            char err[byte(&in) % 2 ? 16 : 512];
            int rc = dp__params_check_known(cur, known, err, sizeof err);
            bool all_known = true;
            for (size_t j = 0; j < dp__params_count(cur); j++) {
                bool found = false;
                for (size_t q = 0; q < n; q++)
                    found = found || strcmp(known[q], dp__params_key_at(cur, j)) == 0;
                all_known = all_known && found;
            }
            FUZZ_CHECK((rc == 0) == all_known);
            if (rc != 0)
                FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
            break;
        }
        case 13: {
            dp_params_t *c = dp_params_clone(root);
            if (c) {
                same_keys(root, c, 0);
                dp_params_free(c);
            }
            break;
        }
        case 14: {
            char buf[byte(&in) % 2 ? 4 : 600];
            dp__params_origin(cur, buf, sizeof buf);
            FUZZ_CHECK(memchr(buf, '\0', sizeof buf) != NULL);
            break;
        }
        case 15:
            dp__params_clear_error(root);
            FUZZ_CHECK(dp__params_error(root) == NULL);
            break;
        }
    }
    dp_params_free(root);
    return 0;
}
