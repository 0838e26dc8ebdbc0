/* test_loader.c - the plugin loader against real plugins: a good one, and
 * one per refusal, each asserting its message (file, reason, fix) and that
 * nothing was registered. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "params.h"
#include "plugin.h"
#include "ptest.h"

static int count_cb(const dp_plugin_info_t *info, void *arg)
{
    (void)info;
    (*(int *)arg)++;
    return 0;
}

static int loaded_count(dp_plugins_t *pl)
{
    int n = 0;
    assert_int_equal(dp_plugins_foreach(pl, count_cb, &n), 0);
    return n;
}

/* Loads name from path (NULL: search path) and expects a refusal whose
 * message holds every needle, and an empty registry. */
static void expect_refusal(dp_plugins_t *pl, const char *name, const char *path, int code, const char *const *needles)
{
    char err[4096] = "";
    int rc = dp_plugins_load(pl, name, path, err, sizeof(err));
    if (rc != code)
        fail_msg("load %s: rc %d, want %d (%s)", name, rc, code, err);
    for (size_t i = 0; needles[i]; i++)
        if (!strstr(err, needles[i]))
            fail_msg("message for %s lacks \"%s\": %s", name, needles[i], err);
    if (!strstr(err, "fix:"))
        fail_msg("message for %s names no fix: %s", name, err);
    assert_int_equal(loaded_count(pl), 0);
}

#define BAD(name) TP_DIR "/bad/" name ".so"
#define REFUSE(pl, name, code, ...)                                                                                    \
    do {                                                                                                               \
        const char *const needles_[] = {__VA_ARGS__, NULL};                                                            \
        expect_refusal(pl, name, BAD(name), code, needles_);                                                           \
    } while (0)

struct info_copy {
    char name[64], version[64], types[256];
    unsigned generation, abi_major, abi_minor;
    bool current;
};

static int info_cb(const dp_plugin_info_t *info, void *arg)
{
    struct info_copy *c = arg;
    snprintf(c->name, sizeof(c->name), "%s", info->name);
    snprintf(c->version, sizeof(c->version), "%s", info->version);
    c->types[0] = '\0';
    for (size_t i = 0; info->types && info->types[i]; i++) {
        strcat(c->types, info->types[i]);
        strcat(c->types, " ");
    }
    c->generation = info->generation;
    c->abi_major = info->abi_major;
    c->abi_minor = info->abi_minor;
    c->current = info->current;
    return 0;
}

static void test_good_loads_from_search_path(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    char err[2048] = "";
    assert_int_equal(dp_plugins_load(pl, "good", NULL, err, sizeof(err)), DP_OK);
    /* Loading again is a no-op. */
    assert_int_equal(dp_plugins_load(pl, "good", NULL, err, sizeof(err)), DP_OK);
    assert_int_equal(loaded_count(pl), 1);
    struct info_copy c;
    dp_plugins_foreach(pl, info_cb, &c);
    assert_string_equal(c.name, "good");
    assert_string_equal(c.version, "1.0.0");
    assert_string_equal(c.types, "echo probe block ");
    assert_int_equal(c.generation, 1);
    assert_int_equal(c.abi_major, 1);
    assert_int_equal(c.abi_minor, DP_PLUGIN_ABI_MINOR);
    assert_true(c.current);
    char path[PATH_MAX];
    assert_int_equal(dp__plugins_loaded_path(pl, "good", path, sizeof(path)), DP_OK);
    assert_string_equal(path, TP_DIR "/v1/good.so");
    /* The same name from another file is refused. */
    assert_int_equal(dp_plugins_load(pl, "good", TP_DIR "/v2/good.so", err, sizeof(err)), DP_EPLUGIN);
    assert_non_null(strstr(err, "already loaded from " TP_DIR "/v1/good.so"));
    dp_plugins_free(pl);
}

static void test_missing(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    const char *const n1[] = {"nosuch.so",  "plugin 'nosuch' not found", DP_PLUGINS_DIR,
                              TP_DIR "/v1", "DAGGERPOOL_PLUGIN_PATH",    NULL};
    expect_refusal(pl, "nosuch", NULL, DP_ENOTFOUND, n1);
    const char *const n2[] = {TP_DIR "/nowhere/x.so", "No such file", NULL};
    expect_refusal(pl, "x", TP_DIR "/nowhere/x.so", DP_ENOTFOUND, n2);
    dp_plugins_free(pl);
}

static void test_not_a_shared_object(void **state)
{
    (void)state;
    char *dir = ptest_tmpdir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/notelf.so", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\necho I am not a plugin\n", f);
    fclose(f);
    dp_plugins_t *pl = ptest_registry(NULL);
    const char *const n[] = {path, "not a shared object", NULL};
    expect_refusal(pl, "notelf", path, DP_EPLUGIN, n);
    /* An ELF file that is not a shared object (a relocatable .o would do;
     * the test program itself is an executable... of type DYN when PIE), so
     * use a truncated header: ELF magic, type ET_REL. */
    f = fopen(path, "wb");
    assert_non_null(f);
    unsigned char hdr[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    hdr[16] = 1; /* ET_REL */
    fwrite(hdr, 1, sizeof(hdr), f);
    fclose(f);
    const char *const n2[] = {path, "not a shared object (ELF type 1", NULL};
    expect_refusal(pl, "notelf", path, DP_EPLUGIN, n2);
    dp_plugins_free(pl);
    ptest_rmrf(dir);
    free(dir);
}

static void test_refusals(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    REFUSE(pl, "bad_noentry", DP_EPLUGIN, BAD("bad_noentry"),
           "not a daggerpool plugin: it does not export dp_plugin_entry_v1");
    REFUSE(pl, "bad_v2", DP_EPLUGIN, BAD("bad_v2"), "built for plugin ABI 2", "exports dp_plugin_entry_v2",
           "this host speaks ABI 1");
    REFUSE(pl, "bad_major", DP_EPLUGIN, BAD("bad_major"), "built for plugin ABI 2.2, but this host speaks ABI 1.2",
           "rebuild");
    REFUSE(pl, "bad_minor", DP_EPLUGIN, BAD("bad_minor"), "built for plugin ABI 1.3, newer than this host's 1.2",
           "upgrade daggerpool");
    REFUSE(pl, "bad_null", DP_EPLUGIN, BAD("bad_null"), "refused this host", "returned NULL");
    REFUSE(pl, "bad_size", DP_EPLUGIN, BAD("bad_size"), "dp_plugin_desc is 8 bytes",
           "struct_size = sizeof(dp_plugin_desc)");
    REFUSE(pl, "bad_name", DP_EPLUGIN, BAD("bad_name"), "calls itself 'somebody_else' but was loaded as 'bad_name'",
           "somebody_else.so");
    REFUSE(pl, "bad_init", DP_EPLUGIN, BAD("bad_init"), "failed to initialise",
           "database unreachable at db.example:5432");
    REFUSE(pl, "bad_notype", DP_EPLUGIN, BAD("bad_notype"), "'bad_notype.idle' has neither run nor check");
    REFUSE(pl, "bad_dup", DP_EPLUGIN, BAD("bad_dup"), "'bad_dup.one' is declared twice");
    dp_plugins_free(pl);
}

static void test_insecure(void **state)
{
    (void)state;
    char *dir = ptest_tmpdir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/good.so", dir);
    ptest_copy(TP_DIR "/v1/good.so", path);
    dp_plugins_t *pl = ptest_registry(NULL);

    assert_int_equal(chmod(path, 0666), 0);
    const char *const n1[] = {path, "insecure", "writable by others", "chmod go-w", NULL};
    expect_refusal(pl, "good", path, DP_EPLUGIN, n1);
    assert_int_equal(chmod(path, 0775), 0);
    const char *const n2[] = {path, "writable by its group", NULL};
    expect_refusal(pl, "good", path, DP_EPLUGIN, n2);
    assert_int_equal(chmod(path, 0755), 0);
    assert_int_equal(chmod(dir, 0777), 0);
    const char *const n3[] = {dir, "the directory is writable by others", NULL};
    expect_refusal(pl, "good", path, DP_EPLUGIN, n3);
    assert_int_equal(chmod(dir, 0700), 0);
    if (geteuid() == 0) {
        /* Owned by someone else entirely. */
        assert_int_equal(chown(path, 65534, 65534), 0);
        const char *const n4[] = {path, "owned by uid 65534", NULL};
        expect_refusal(pl, "good", path, DP_EPLUGIN, n4);
    }
    /* The escape hatch. */
    assert_int_equal(chmod(path, 0666), 0);
    dp_plugins_allow_insecure(pl, true);
    char err[2048] = "";
    int rc = dp_plugins_load(pl, "good", path, err, sizeof(err));
    if (rc != DP_OK)
        fail_msg("%s", err);
    assert_int_equal(loaded_count(pl), 1);
    dp_plugins_free(pl);
    ptest_rmrf(dir);
    free(dir);
}

static void test_add_job_errors(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "J";
    char err[2048] = "";

    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "good", NULL, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "not of the form PLUGIN.TYPE"));
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "good.nope", NULL, err, sizeof(err)), DP_ENOTFOUND);
    assert_non_null(strstr(err, "plugin 'good' has no job type 'nope' (it has: echo, probe, block)"));
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "nosuch.x", NULL, err, sizeof(err)), DP_ENOTFOUND);
    assert_non_null(strstr(err, "job 'J' (type 'nosuch.x'): nosuch.so: plugin 'nosuch' not found"));

    dp_params_t *p = dp_params_new();
    dp_params_set_origin(p, "deploy.cfg", 12);
    dp_params_set_string(p, "mesage", "hi");
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "good.echo", p, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "job 'J' (type 'good.echo'): unknown param 'mesage' (deploy.cfg:12) "
                                "(did you mean 'message'?)"));
    dp_params_free(p);

    p = dp_params_new();
    dp_params_set_origin(p, "deploy.cfg", 14);
    dp_params_set_int(p, "message", 5);
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "good.echo", p, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "param 'message' (deploy.cfg:14): expected a string, found an "
                                "integer"));
    dp_params_free(p);

    /* The plugin's own message for a missing param. */
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "good.probe", NULL, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "good.probe needs `key`"));
    assert_int_equal(dp_graph_job_count(g), 0);

    /* A duplicate job name is the engine's refusal, and leaks nothing. */
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "good.echo", NULL, err, sizeof(err)), DP_OK);
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "good.echo", NULL, err, sizeof(err)), DP_EDUPLICATE);
    assert_int_equal(dp_graph_job_count(g), 1);
    /* The graph keeps the registry alive after dp_plugins_free. */
    dp_plugins_free(pl);
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(dp_result_job(r, 0)->status, DP_STATUS_SUCCESS);
    assert_string_equal(dp_result_job(r, 0)->plugin_version, "1.0.0");
    assert_string_equal(dp_result_job(r, 0)->plugin, "good");
    dp_result_free(r);
    dp_graph_free(g);
}

struct scan_acc {
    char text[8192];
};

static int scan_cb(const dp_plugin_info_t *info, void *arg)
{
    struct scan_acc *a = arg;
    size_t off = strlen(a->text);
    snprintf(a->text + off, sizeof(a->text) - off, "%s=%s\n", info->name, info->error ? info->error : info->version);
    return 0;
}

static void test_scan(void **state)
{
    (void)state;
    dp_plugins_t *pl = dp_plugins_new();
    assert_int_equal(dp__plugins_add_path_list(pl, TP_DIR "/v1::" TP_DIR "/bad"), DP_OK);
    struct scan_acc a = {""};
    assert_int_equal(dp_plugins_scan(pl, scan_cb, &a), 0);
    assert_non_null(strstr(a.text, "good=1.0.0\n"));
    assert_non_null(strstr(a.text, "bad_init=" BAD("bad_init") ": plugin 'bad_init' 0.1.0 "
                                                               "failed to initialise"));
    assert_non_null(strstr(a.text, "bad_major=" BAD("bad_major") ": built for plugin ABI 2.2"));
    /* Scanning registers nothing. */
    assert_int_equal(loaded_count(pl), 0);
    dp_plugins_free(pl);
}

static void test_default_dir(void **state)
{
    (void)state;
    char dir[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
    assert_int_equal(dp__plugins_default_dir(dir, sizeof(dir)), DP_OK);
    /* Tests live in the build's bin/, so this is the build's plugin dir. */
    assert_non_null(realpath(dir, a));
    assert_non_null(realpath(DP_PLUGINS_DIR, b));
    assert_string_equal(a, b);
    char tiny[4];
    assert_int_equal(dp__plugins_default_dir(tiny, sizeof(tiny)), DP_EINVAL);
}

static void test_host_api_table(void **state)
{
    (void)state;
    const dp_host_api *h = dp__plugins_host_api();
    assert_int_equal(h->struct_size, sizeof(dp_host_api));
    assert_int_equal(h->abi_major, DP_PLUGIN_ABI_MAJOR);
    assert_int_equal(h->abi_minor, DP_PLUGIN_ABI_MINOR);
    /* Every slot of this minor is filled. */
    assert_true(DP_HOST_HAS(h, log) && DP_HOST_HAS(h, store_delete) && DP_HOST_HAS(h, params_check_known) &&
                DP_HOST_HAS(h, param_group));
    /* A smaller (older) table does not have the later functions. */
    dp_host_api old = *h;
    old.struct_size = (uint32_t)offsetof(dp_host_api, store_set);
    assert_false(DP_HOST_HAS(&old, store_set));
    assert_true(DP_HOST_HAS(&old, params_check_known));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_loads_from_search_path),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_not_a_shared_object),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_insecure),
        cmocka_unit_test(test_add_job_errors),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_default_dir),
        cmocka_unit_test(test_host_api_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
