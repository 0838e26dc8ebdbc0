/* test_identical.c - the plugin file watcher compares content, not stat
 * (docs/hotswap.md: "A file identical to the one that serves is left
 * alone"), and a replacement that stays cut short is a refused reload:
 *   - touch (new mtime) and an identical copy renamed over (new inode) leave
 *     the version serving (no reload report, no new generation, no
 *     "reloaded" log line; an info line says why);
 *   - a real change still reloads; the old bytes renamed back reload again;
 *   - bytes swapped behind the watcher's back (dp_plugins_reload) are not
 *     compared with: the file is reloaded;
 *   - a truncated file is refused after it stays quiet: an error-level log
 *     line naming the file and the reason, a refusal in dp_reloader_stats
 *     and in the on_reload report; the old version keeps serving; the good
 *     file renamed back is then left alone (it is what serves).
 * Driven by the embedder's loop (dp_reloader_fd + dispatch). */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hscommon.h"

static int setup(void **state)
{
    *state = hs_fix_new(0);
    return 0;
}

static int teardown(void **state)
{
    hs_fix_free(*state);
    return 0;
}

/* Whether the log holds needle (quietly: this is polled). */
static bool log_has(hs_fix_t *f, const char *needle)
{
    pthread_mutex_lock(&f->log.mu);
    bool has = f->log.buf && strstr(f->log.buf, needle);
    pthread_mutex_unlock(&f->log.mu);
    return has;
}

/* Dispatches for up to timeout_ms, until n reload reports came (n > 0) or
 * the log holds needle (not NULL). True if either happened. */
static bool pump(hs_fix_t *f, size_t n, const char *needle, uint64_t timeout_ms)
{
    uint64_t end = hs_mono_ns() + timeout_ms * 1000000u;
    for (;;) {
        if ((n && hs_nevents(f) >= n) || (needle && log_has(f, needle)))
            return true;
        if (hs_mono_ns() >= end)
            return false;
        struct pollfd p = {.fd = dp_reloader_fd(f->rl), .events = POLLIN};
        if (poll(&p, 1, 50) > 0)
            assert_true(dp_reloader_dispatch(f->rl) >= 0);
    }
}

struct gen_arg {
    unsigned generation;
};

static int gen_cb(const dp_plugin_info_t *info, void *arg)
{
    if (info->current)
        ((struct gen_arg *)arg)->generation = info->generation;
    return 0;
}

static unsigned generation(hs_fix_t *f)
{
    struct gen_arg a = {0};
    dp_plugins_foreach(f->pl, gen_cb, &a);
    return a.generation;
}

static void touch(const char *path)
{
    /* A time well away from now: even a coarse mtime changes. */
    struct timespec t[2] = {{.tv_sec = 1000000000, .tv_nsec = 0}, {.tv_sec = 1000000000, .tv_nsec = 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

static ino_t inode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_ino;
}

#define SAME_BYTES "holds the same bytes as plugin hs"

static void expect_left_alone(hs_fix_t *f, unsigned gen, const char *version)
{
    char v[16];
    /* Either a reload report or the info line that says why there is
     * none comes once the file settles; give it ample time. */
    assert_true(pump(f, 1, SAME_BYTES, 10000));
    if (hs_nevents(f))
        fail_msg("the file was reloaded (status %d, version %s)", hs_event(f, 0).status, hs_event(f, 0).new_version);
    assert_true(log_has(f, SAME_BYTES));
    /* And nothing comes after it. */
    assert_false(pump(f, 1, NULL, 300));
    assert_int_equal(generation(f), gen);
    assert_string_equal(hs_current(f, v, sizeof(v)), version);
    if (log_has(f, "reloaded"))
        fail_msg("a reload was logged:\n%s", f->log.buf);
    unsigned long swaps = 99, refused = 99;
    dp_reloader_stats(f->rl, &swaps, &refused);
    assert_int_equal(swaps, 0);
    assert_int_equal(refused, 0);
}

static void test_touch_is_left_alone(void **state)
{
    hs_fix_t *f = *state;
    touch(f->path);
    expect_left_alone(f, 1, "1");
}

static void test_identical_rename_is_left_alone(void **state)
{
    hs_fix_t *f = *state;
    ino_t before = inode(f->path);
    hs_install_rename(f, "v1");
    assert_true(inode(f->path) != before);
    expect_left_alone(f, 1, "1");
}

static void test_real_change_still_reloads(void **state)
{
    hs_fix_t *f = *state;
    char v[16];
    touch(f->path);
    assert_true(pump(f, 0, SAME_BYTES, 10000));
    hs_install_rename(f, "v2");
    assert_true(pump(f, 1, NULL, 10000));
    assert_int_equal(hs_event(f, 0).status, DP_OK);
    assert_string_equal(hs_current(f, v, sizeof(v)), "2");
    assert_int_equal(generation(f), 2);
    /* v1's bytes again: they differ from what serves (v2), so they load. */
    hs_install_rename(f, "v1");
    assert_true(pump(f, 2, NULL, 10000));
    assert_int_equal(hs_event(f, 1).status, DP_OK);
    assert_string_equal(hs_current(f, v, sizeof(v)), "1");
    assert_int_equal(generation(f), 3);
    /* A rewrite in place with the same bytes: left alone. */
    hs_overwrite(f, "v1", 1, 0);
    assert_true(pump(f, 0, SAME_BYTES, 10000));
    assert_false(pump(f, 3, NULL, 300));
    assert_int_equal(generation(f), 3);
}

/* The watcher last saw v1 serve; v2 is loaded by a direct call, then v1's
 * bytes come back before the watcher looks: v2 serves, so v1 must load. */
static void test_reload_behind_the_watchers_back(void **state)
{
    hs_fix_t *f = *state;
    char v[16], err[2048];
    hs_install_rename(f, "v2");
    assert_int_equal(dp_plugins_reload(f->pl, "hs", err, sizeof(err)), DP_OK);
    assert_string_equal(hs_current(f, v, sizeof(v)), "2");
    hs_install_rename(f, "v1");
    assert_true(pump(f, 1, NULL, 10000));
    assert_int_equal(hs_event(f, 0).status, DP_OK);
    assert_string_equal(hs_event(f, 0).new_version, "1");
    assert_string_equal(hs_current(f, v, sizeof(v)), "1");
    assert_false(log_has(f, SAME_BYTES));
}

/* The first half of v2, renamed over hs.so. */
static void install_truncated(hs_fix_t *f)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s/.hs.so.new", f->dir);
    ptest_copy(hs_variant("v2"), tmp);
    struct stat st;
    assert_int_equal(stat(tmp, &st), 0);
    assert_int_equal(truncate(tmp, st.st_size / 2), 0);
    assert_int_equal(rename(tmp, f->path), 0);
}

static void test_truncated_is_a_refused_reload(void **state)
{
    hs_fix_t *f = *state;
    char v[16];
    install_truncated(f);
    /* Refused only after the file stayed cut short for a while (about 2 s
     * at the default settle interval): allow much more. */
    assert_true(pump(f, 1, NULL, 30000));
    hs_event_t e = hs_event(f, 0);
    assert_int_equal(e.status, DP_EPLUGIN);
    assert_non_null(strstr(e.error, f->path));
    assert_non_null(strstr(e.error, "cut short"));
    assert_string_equal(e.new_version, "");
    unsigned long swaps = 99, refused = 99;
    dp_reloader_stats(f->rl, &swaps, &refused);
    assert_int_equal(swaps, 0);
    assert_int_equal(refused, 1);
    /* At error level, naming the file and the reason. */
    char line[PATH_MAX + 128];
    snprintf(line, sizeof(line),
             "error job=- plugin=hs: reload of plugin hs refused, 1 keeps serving: %s "
             "looks cut short",
             f->path);
    if (!log_has(f, line))
        fail_msg("no \"%s\" in the log:\n%s", line, f->log.buf ? f->log.buf : "");
    assert_string_equal(hs_current(f, v, sizeof(v)), "1");
    assert_int_equal(generation(f), 1);
    /* The good file back: it is what serves, so nothing to do. */
    hs_install_rename(f, "v1");
    assert_true(pump(f, 0, SAME_BYTES, 10000));
    assert_false(pump(f, 2, NULL, 300));
    assert_int_equal(generation(f), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_touch_is_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identical_rename_is_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_change_still_reloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_behind_the_watchers_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_is_a_refused_reload, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
