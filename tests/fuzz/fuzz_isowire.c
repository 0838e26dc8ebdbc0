/* fuzz_isowire.c - the isolation wire format (host/src/isolate.c) on any
 * bytes: what an isolated plugin's runner, or a plugin scribbling on its
 * socket, may send the host, and the params the host sends the runner.
 *
 * The input is read as a RESULT / LOG / STORE payload (integers, strings,
 * byte strings) and as serialized params. Invariants: readers never read
 * past the end (ASan), a string is NUL-terminated with no NUL inside, and
 * params that decode encode back to bytes that decode to the same keys,
 * kinds and values. */
#include <string.h>

#include "daggerpool/daggerpool.h"
#include "fuzz.h"
#include "isolate.h"
#include "params.h"

static void same(const dp_params_t *a, const dp_params_t *b, int depth)
{
    size_t n = dp__params_count(a);
    FUZZ_CHECK(n == dp__params_count(b));
    for (size_t i = 0; i < n; i++) {
        const char *k = dp__params_key_at(a, i);
        FUZZ_CHECK(strcmp(k, dp__params_key_at(b, i)) == 0);
        dp_param_kind_t kind = dp__params_kind(a, k);
        FUZZ_CHECK(kind == dp__params_kind(b, k));
        const char *sa, *sb;
        int64_t ia, ib;
        double fa, fb;
        size_t ca, cb;
        const dp_params_t *ga, *gb;
        switch (kind) {
        case DP_PARAM_KIND_STRING:
            dp__params_get_string(a, k, &sa);
            dp__params_get_string(b, k, &sb);
            FUZZ_CHECK(strcmp(sa, sb) == 0);
            break;
        case DP_PARAM_KIND_INT:
            dp__params_get_int(a, k, &ia);
            dp__params_get_int(b, k, &ib);
            FUZZ_CHECK(ia == ib);
            break;
        case DP_PARAM_KIND_FLOAT:
            dp__params_get_float(a, k, &fa);
            dp__params_get_float(b, k, &fb);
            FUZZ_CHECK(memcmp(&fa, &fb, sizeof fa) == 0);
            break;
        case DP_PARAM_KIND_LIST:
            dp__params_list_count(a, k, &ca);
            dp__params_list_count(b, k, &cb);
            FUZZ_CHECK(ca == cb);
            break;
        case DP_PARAM_KIND_GROUP:
            dp__params_get_group(a, k, &ga);
            dp__params_get_group(b, k, &gb);
            if (depth < 70)
                same(ga, gb, depth + 1);
            break;
        default: break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    /* As the host reads a RESULT, then a LOG, then a store request. */
    dp_iso_reader_t r = {data, size, false};
    (void)dp__iso_get_u32(&r);
    (void)dp__iso_get_u32(&r);
    (void)dp__iso_get_u8(&r);
    const char *s = dp__iso_get_str(&r);
    if (s)
        FUZZ_CHECK(strlen(s) <= size);
    size_t len;
    const void *b = dp__iso_get_bytes(&r, &len);
    if (b && len)
        FUZZ_CHECK((const uint8_t *)b >= data && (const uint8_t *)b + len <= data + size);
    (void)dp__iso_get_u64(&r);

    /* As the runner reads the params. */
    dp_iso_reader_t pr = {data, size, false};
    dp_params_t *p = dp__iso_get_params(&pr);
    if (!p)
        return 0;
    dp_iso_buf_t buf = {0};
    dp__iso_begin(&buf, DP_ISO_INIT);
    dp__iso_put_params(&buf, p);
    if (dp__iso_end(&buf)) {
        dp_iso_reader_t back = {buf.data + 5, buf.len - 5, false};
        dp_params_t *q = dp__iso_get_params(&back);
        FUZZ_CHECK(q != NULL && !back.bad && back.n == 0);
        same(p, q, 0);
        dp_params_free(q);
    }
    dp__iso_buf_free(&buf);
    dp_params_free(p);
    return 0;
}
