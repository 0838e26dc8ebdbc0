/* test_duration.c - dp_duration_parse / dp_duration_format (host/src/duration.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"

static uint64_t parse_ok(const char *text)
{
    uint64_t ms = 12345;
    char err[256] = "";
    int rc = dp_duration_parse(text, &ms, err, sizeof err);
    if (rc != DP_OK)
        fail_msg("\"%s\" refused: %s", text, err);
    return ms;
}

/* Returns the message; asserts the value was left alone. */
static const char *parse_bad(const char *text)
{
    static char err[256];
    uint64_t ms = 777;
    err[0] = '\0';
    int rc = dp_duration_parse(text, &ms, err, sizeof err);
    if (rc != DP_EINVAL)
        fail_msg("\"%s\" accepted as %llu", text, (unsigned long long)ms);
    assert_int_equal(ms, 777);
    assert_true(err[0] != '\0');
    return err;
}

static void test_units(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("250ms"), 250);
    assert_int_equal(parse_ok("30s"), 30000);
    assert_int_equal(parse_ok("5m"), 300000);
    assert_int_equal(parse_ok("2h"), 7200000);
    assert_int_equal(parse_ok("1h30m"), 5400000);
    assert_int_equal(parse_ok("1h30m15s250ms"), 5415250);
    assert_int_equal(parse_ok("1h15s"), 3615000); /* a unit may be skipped */
    assert_int_equal(parse_ok("0s"), 0);
    assert_int_equal(parse_ok("0ms"), 0);
}

static void test_bare_integer_is_ms(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("0"), 0);
    assert_int_equal(parse_ok("1500"), 1500);
    assert_int_equal(parse_ok("18446744073709551615"), UINT64_MAX);
}

static void test_fractions(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("1.5s"), 1500);
    assert_int_equal(parse_ok("0.1s"), 100);
    assert_int_equal(parse_ok(".5s"), 500);
    assert_int_equal(parse_ok("1.s"), 1000);
    assert_int_equal(parse_ok("0.5h"), 1800000);
    assert_int_equal(parse_ok("1.25m"), 75000);
    assert_int_equal(parse_ok("0.001s"), 1);
    assert_int_equal(parse_ok("1.5000000000000000000000s"), 1500);
    assert_non_null(strstr(parse_bad("1.5ms"), "finer than a millisecond"));
    assert_non_null(strstr(parse_bad("0.0001s"), "finer than a millisecond"));
    assert_non_null(strstr(parse_bad("1.5000000000000000000001s"), "finer than a millisecond"));
    assert_non_null(strstr(parse_bad("1.5"), "must be whole"));
}

static void test_refusals(void **state)
{
    (void)state;
    assert_non_null(strstr(parse_bad(""), "empty"));
    assert_non_null(strstr(parse_bad("-5s"), "negative"));
    assert_non_null(strstr(parse_bad("-1"), "negative"));
    assert_non_null(strstr(parse_bad("abc"), "unexpected 'a'"));
    assert_non_null(strstr(parse_bad("5x"), "unknown unit at \"x\""));
    assert_non_null(strstr(parse_bad("5 s"), "unknown unit"));
    assert_non_null(strstr(parse_bad(" 5s"), "unexpected ' '"));
    assert_non_null(strstr(parse_bad("5s "), "unexpected ' '"));
    assert_non_null(strstr(parse_bad("1h30"), "no unit"));
    assert_non_null(strstr(parse_bad("30m1h"), "largest to smallest"));
    assert_non_null(strstr(parse_bad("1s1s"), "largest to smallest"));
    assert_non_null(strstr(parse_bad("."), "needs digits"));
    assert_non_null(strstr(parse_bad("s"), "unexpected 's'"));
    assert_non_null(strstr(parse_bad("+5s"), "unexpected '+'"));
    assert_non_null(strstr(parse_bad("1e3"), "unknown unit"));
    /* Messages carry the offending text. */
    assert_non_null(strstr(parse_bad("5parsecs"), "\"5parsecs\""));
}

static void test_overflow(void **state)
{
    (void)state;
    assert_non_null(strstr(parse_bad("18446744073709551616"), "too large"));
    assert_non_null(strstr(parse_bad("99999999999999999999999ms"), "too large"));
    assert_non_null(strstr(parse_bad("5124095576030432h"), "too large"));
    /* UINT64_MAX = 5124095576030h + 1551615ms: the sum, not a part, overflows. */
    assert_int_equal(parse_ok("5124095576030h1551615ms"), UINT64_MAX);
    assert_non_null(strstr(parse_bad("5124095576030h1551616ms"), "too large"));
    assert_non_null(strstr(parse_bad("5124095576031h"), "too large"));
}

static void test_null_and_small_buffers(void **state)
{
    (void)state;
    uint64_t ms;
    assert_int_equal(dp_duration_parse(NULL, &ms, NULL, 0), DP_EINVAL);
    assert_int_equal(dp_duration_parse("1s", NULL, NULL, 0), DP_EINVAL);
    assert_int_equal(dp_duration_parse("bad", &ms, NULL, 0), DP_EINVAL);
    char tiny[8];
    assert_int_equal(dp_duration_parse("bad", &ms, tiny, sizeof tiny), DP_EINVAL);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static void test_format(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(dp_duration_format(0, buf, sizeof buf), "0s");
    assert_string_equal(dp_duration_format(250, buf, sizeof buf), "250ms");
    assert_string_equal(dp_duration_format(2000, buf, sizeof buf), "2s");
    assert_string_equal(dp_duration_format(1500, buf, sizeof buf), "1.5s");
    assert_string_equal(dp_duration_format(1250, buf, sizeof buf), "1.25s");
    assert_string_equal(dp_duration_format(1001, buf, sizeof buf), "1.001s");
    assert_string_equal(dp_duration_format(5400000, buf, sizeof buf), "1h30m");
    assert_string_equal(dp_duration_format(300000, buf, sizeof buf), "5m");
    assert_string_equal(dp_duration_format(3600500, buf, sizeof buf), "1h0.5s");
    assert_string_equal(dp_duration_format(61000, buf, sizeof buf), "1m1s");
    char small[4];
    assert_string_equal(dp_duration_format(5400000, small, sizeof small), "1h3");
    assert_string_equal(dp_duration_format(1, NULL, 0), "");
}

/* Whatever format writes, parse reads back as the same value. */
static void test_round_trip(void **state)
{
    (void)state;
    const uint64_t samples[] = {0,       1,       999,      1000,      1001,           59999,          60000,
                                3599999, 3600000, 86400000, 123456789, UINT64_MAX / 2, UINT64_MAX - 1, UINT64_MAX};
    char buf[64];
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        assert_int_equal(parse_ok(dp_duration_format(samples[i], buf, sizeof buf)), samples[i]);
    uint64_t x = 88172645463325252ull; /* xorshift: many shapes of value */
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t v = x >> (i % 64);
        assert_int_equal(parse_ok(dp_duration_format(v, buf, sizeof buf)), v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),     cmocka_unit_test(test_bare_integer_is_ms),
        cmocka_unit_test(test_fractions), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_overflow),  cmocka_unit_test(test_null_and_small_buffers),
        cmocka_unit_test(test_format),    cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
