/* test_jsonw.c - the JSON writer (host/src/jsonw.c) against jansson: for
 * random documents with hostile strings (control bytes, quotes, invalid
 * UTF-8, multi-byte sequences) the writer's output is byte for byte what
 * json_dumps writes for the same tree, indented and compact, and jansson
 * parses it back to the same tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "daggerpool/daggerpool.h"
#include "jsonw.h"
#include "text.h"

/* xorshift64*: a fixed seed, so a failure replays. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 33) % n;
}

/* A string of up to 12 bytes drawn from ones that need care. */
static void random_string(char *s)
{
    static const char *const parts[] = {"a",
                                        "Z",
                                        "0",
                                        " ",
                                        "\"",
                                        "\\",
                                        "/",
                                        "\n",
                                        "\t",
                                        "\r",
                                        "\b",
                                        "\f",
                                        "\x01",
                                        "\x1b",
                                        "\x7f",
                                        "\xc3\xa9",
                                        "\xe2\x82\xac",
                                        "\xf0\x9f\x98\x80",
                                        "\xff",
                                        "\xfe",
                                        "\xc3",
                                        "\xed\xa0\x80",
                                        "\xc0\xaf",
                                        "\xf4\x90\x80\x80"};
    size_t n = rnd(6), o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = parts[rnd(sizeof parts / sizeof parts[0])];
        memcpy(s + o, p, strlen(p));
        o += strlen(p);
    }
    s[o] = '\0';
}

/* jansson needs valid UTF-8; the writer makes invalid bytes U+FFFD, so
 * the reference tree holds the sanitized string. */
static json_t *ref_string(const char *s)
{
    char *clean = dp__utf8_sanitize(s);
    assert_non_null(clean);
    json_t *j = json_string(clean);
    free(clean);
    assert_non_null(j);
    return j;
}

/* Writes a random value to w and returns the same value as a tree. */
static json_t *random_value(dp__jsonw_t *w, int depth)
{
    char s[64];
    switch (depth > 3 ? rnd(4) : rnd(6)) {
    case 0:
        random_string(s);
        dp__jsonw_string(w, s);
        return ref_string(s);
    case 1: {
        int64_t v = (int64_t)rnd(2000000) - 1000000;
        if (rnd(8) == 0)
            v = rnd(2) ? INT64_MAX : INT64_MIN;
        dp__jsonw_int(w, v);
        return json_integer(v);
    }
    case 2:
        if (rnd(2)) {
            dp__jsonw_null(w);
            return json_null();
        }
        {
            bool b = rnd(2);
            dp__jsonw_bool(w, b);
            return json_boolean(b);
        }
    case 3: dp__jsonw_string(w, NULL); return json_null();
    case 4: {
        json_t *a = json_array();
        dp__jsonw_array_open(w);
        for (uint32_t i = 0, n = rnd(4); i < n; i++) {
            json_t *v = random_value(w, depth + 1);
            assert_non_null(v);
            json_array_append_new(a, v);
        }
        dp__jsonw_array_close(w);
        return a;
    }
    default: {
        json_t *o = json_object();
        dp__jsonw_object_open(w);
        for (uint32_t i = 0, n = rnd(4); i < n; i++) {
            snprintf(s, sizeof s, "k%u", i); /* distinct keys: jansson keeps one of each */
            if (rnd(3) == 0)
                random_string(s + strlen(s));
            /* a plain key either way: the literal key's one-step writing
             * must give the same bytes as the scan */
            if (s[strspn(s, "k0123456789")] == '\0' && rnd(2))
                dp__jsonw_key_plain(w, s, strlen(s));
            else
                dp__jsonw_key(w, s);
            json_t *v = random_value(w, depth + 1);
            assert_non_null(v);
            char *clean = dp__utf8_sanitize(s);
            json_object_set_new(o, clean, v);
            free(clean);
        }
        dp__jsonw_object_close(w);
        return o;
    }
    }
}

static void compare_many(int indent, size_t flags)
{
    for (int round = 0; round < 3000; round++) {
        dp__jsonw_t w;
        dp__jsonw_init(&w, NULL, indent);
        json_t *ref = random_value(&w, 0);
        assert_non_null(ref);
        assert_int_equal(dp__jsonw_finish(&w), 0);
        size_t len = 0;
        char *got = dp__jsonw_take(&w, &len);
        assert_non_null(got);
        char *want = json_dumps(ref, flags | JSON_ENCODE_ANY);
        assert_non_null(want);
        if (strcmp(got, want) != 0)
            fail_msg("round %d: writer wrote\n%s\njansson wrote\n%s", round, got, want);
        assert_int_equal(len, strlen(want));
        json_error_t e;
        json_t *back = json_loads(got, JSON_DECODE_ANY, &e);
        assert_non_null(back);
        assert_true(json_equal(back, ref));
        json_decref(back);
        json_decref(ref);
        free(got);
        free(want);
    }
}

static void test_indented_as_jansson(void **state)
{
    (void)state;
    compare_many(2, JSON_INDENT(2));
}

static void test_compact_as_jansson(void **state)
{
    (void)state;
    compare_many(0, JSON_COMPACT);
}

/* A file writer streams through its buffer: a document larger than it
 * arrives whole, and a full device is an error, not a short file. */
static void test_streams_to_file_and_reports_errors(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    dp__jsonw_t w;
    dp__jsonw_init(&w, f, 2);
    dp__jsonw_array_open(&w);
    for (int i = 0; i < 50000; i++)
        dp__jsonw_string(&w, "a string of some length, to pass the buffer");
    dp__jsonw_array_close(&w);
    assert_int_equal(dp__jsonw_finish(&w), 0);
    long size = ftell(f);
    rewind(f);
    json_error_t e;
    json_t *back = json_loadf(f, 0, &e);
    assert_non_null(back);
    assert_int_equal(json_array_size(back), 50000);
    assert_true(size > 2 * 1024 * 1024);
    json_decref(back);
    fclose(f);

    /* A stream that holds 64 bytes: a full disk, without touching one. */
    static char small[64];
    FILE *full = fmemopen(small, sizeof small, "w");
    assert_non_null(full);
    setvbuf(full, NULL, _IONBF, 0);
    dp__jsonw_init(&w, full, 0);
    dp__jsonw_array_open(&w);
    for (int i = 0; i < 50000; i++)
        dp__jsonw_int(&w, i);
    dp__jsonw_array_close(&w);
    assert_int_equal(dp__jsonw_finish(&w), DP_ESYS);
    fclose(full);
}

/* Misuse is an error, never malformed output. */
static void test_unbalanced_is_an_error(void **state)
{
    (void)state;
    dp__jsonw_t w;
    dp__jsonw_init(&w, NULL, 0);
    dp__jsonw_object_open(&w);
    dp__jsonw_key(&w, "a");
    assert_int_equal(dp__jsonw_finish(&w), DP_EINVAL);
    assert_null(dp__jsonw_take(&w, NULL));

    dp__jsonw_init(&w, NULL, 0);
    dp__jsonw_array_close(&w);
    assert_int_equal(dp__jsonw_finish(&w), DP_EINVAL);
    dp__jsonw_discard(&w);

    dp__jsonw_init(&w, NULL, 0);
    dp__jsonw_array_open(&w);
    dp__jsonw_key(&w, "not in an object");
    dp__jsonw_array_close(&w);
    assert_int_equal(dp__jsonw_finish(&w), DP_EINVAL);
    dp__jsonw_discard(&w);

    dp__jsonw_init(&w, NULL, 2);
    dp__jsonw_array_open(&w);
    dp__jsonw_key_lit(&w, "not in an object");
    dp__jsonw_array_close(&w);
    assert_int_equal(dp__jsonw_finish(&w), DP_EINVAL);
    dp__jsonw_discard(&w);

    dp__jsonw_init(&w, NULL, 2);
    dp__jsonw_object_open(&w);
    dp__jsonw_key_lit(&w, "a");
    dp__jsonw_key_lit(&w, "two keys, no value");
    dp__jsonw_object_close(&w);
    assert_int_equal(dp__jsonw_finish(&w), DP_EINVAL);
    dp__jsonw_discard(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_indented_as_jansson),
        cmocka_unit_test(test_compact_as_jansson),
        cmocka_unit_test(test_streams_to_file_and_reports_errors),
        cmocka_unit_test(test_unbalanced_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
