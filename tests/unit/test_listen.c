/* test_listen.c - the address of `watch --listen` and workflow.listen
 * (host/src/listen.c): loopback unless written out, every form refused with
 * its reason, and the text of what was bound. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "listen.h"

static dp__listen_addr_t ok(const char *text)
{
    dp__listen_addr_t a;
    char err[512] = "";
    if (dp__listen_parse(text, &a, err, sizeof err) != DP_OK)
        fail_msg("'%s' refused: %s", text, err);
    return a;
}

static const char *bad(const char *text)
{
    static char err[512];
    dp__listen_addr_t a;
    err[0] = '\0';
    if (dp__listen_parse(text, &a, err, sizeof err) != DP_EINVAL)
        fail_msg("'%s' accepted", text);
    assert_true(err[0] != '\0');
    return err;
}

static const char *text_of(const dp__listen_addr_t *a)
{
    static char buf[80];
    dp__listen_format(a, a->port, buf, sizeof buf);
    return buf;
}

static void test_loopback_by_default(void **state)
{
    (void)state;
    const char *forms[] = {"9100", ":9100", "localhost:9100", "127.0.0.1:9100"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        dp__listen_addr_t a = ok(forms[i]);
        assert_true(a.loopback);
        assert_false(a.ipv6);
        assert_int_equal(a.port, 9100);
        assert_string_equal(text_of(&a), "127.0.0.1:9100");
    }
    dp__listen_addr_t a = ok("127.0.0.2:80");
    assert_true(a.loopback);
    a = ok("[::1]:9100");
    assert_true(a.loopback && a.ipv6);
    assert_string_equal(text_of(&a), "[::1]:9100");
    a = ok("[localhost]:1");
    assert_true(a.loopback && a.ipv6);
}

static void test_beyond_loopback_only_as_written(void **state)
{
    (void)state;
    dp__listen_addr_t a = ok("0.0.0.0:9100");
    assert_false(a.loopback);
    assert_string_equal(text_of(&a), "0.0.0.0:9100");
    a = ok("192.0.2.7:80");
    assert_false(a.loopback);
    a = ok("[::]:9100");
    assert_false(a.loopback);
    assert_true(a.ipv6);
}

static void test_port_zero_and_bounds(void **state)
{
    (void)state;
    assert_int_equal(ok("0").port, 0);
    assert_int_equal(ok(":65535").port, 65535);
    assert_non_null(strstr(bad("65536"), "'65536' is not a port"));
    assert_non_null(strstr(bad("127.0.0.1:"), "'' is not a port"));
    assert_non_null(strstr(bad("-1"), "is not a port"));
    assert_non_null(strstr(bad("+80"), "is not a port"));
    assert_non_null(strstr(bad("80x"), "is not a port"));
    assert_non_null(strstr(bad("000009100"), "is not a port"));
}

static void test_refusals(void **state)
{
    (void)state;
    assert_non_null(strstr(bad(""), "an empty listen address"));
    assert_non_null(strstr(bad("example.com:80"), "host names are not looked up"));
    assert_non_null(strstr(bad("::1:80"), "goes in brackets"));
    assert_non_null(strstr(bad("[::1]80"), "needs its port after ']:'"));
    assert_non_null(strstr(bad("[::1"), "needs its port"));
    assert_non_null(strstr(bad("[zz]:80"), "is not an IPv6 address"));
    assert_non_null(strstr(bad("1.2.3:80"), "is not an IPv4 address"));
    /* Every refusal says how to write one. */
    assert_non_null(strstr(bad("x"), "write PORT (loopback)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_by_default),
        cmocka_unit_test(test_beyond_loopback_only_as_written),
        cmocka_unit_test(test_port_zero_and_bounds),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
