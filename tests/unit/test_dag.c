/* test_dag.c - building and validating the job graph (host/src/dag.c):
 * ids in name order, CSR dependency and successor lists, and every
 * validation error with its code and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daggerpool/daggerpool.h"
#include "dag.h"
#include "testutil.h"

static dp_outcome_t noop(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    return DP_READY;
}

static int add(dp_graph_t *g, const char *name, char *err, size_t errlen)
{
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.name = name;
    sp.run = noop;
    return dp_graph_add_job(g, &sp, err, errlen);
}

/* Names of a job's deps or succs as "A,B". */
static const char *list(const dp_graph_t *g, const char *job, bool succs)
{
    static char buf[1024];
    long id = dp_graph_job_id(g, job);
    assert_true(id >= 0);
    const uint32_t *ids;
    size_t n = succs ? dp_graph_succs(g, (size_t)id, &ids) : dp_graph_deps(g, (size_t)id, &ids);
    dp_id_list_t l = {.count = n, .ids = (uint32_t *)(uintptr_t)ids};
    return tu_ids(g, &l, buf, sizeof buf);
}

static void test_spec_defaults(void **state)
{
    (void)state;
    dp_job_spec_t sp;
    memset(&sp, 0xab, sizeof sp);
    dp_job_spec_init(&sp);
    assert_null(sp.name);
    assert_null(sp.run);
    assert_null(sp.check);
    assert_int_equal(sp.timeout_ms, 0);
    assert_int_equal(sp.retries, 0);
    assert_int_equal(sp.backoff.initial_ms, 1000);
    assert_true(sp.backoff.factor == 2.0);
    assert_int_equal(sp.backoff.max_ms, 30000);
    assert_true(sp.backoff.jitter == 0.0);
    assert_int_equal(sp.readiness.period_ms, 0);
    assert_int_equal(sp.readiness.probe_timeout_ms, 30000);
    assert_int_equal(sp.readiness.timeout_ms, 0);
}

/* The seed's example DAG, jobs added in scrambled order: ids are name
 * order, deps and succs sorted, and the lists agree with the spec. */
static void test_ids_and_csr(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("JobE:JobD;JobC:JobA;JobA:;JobD:JobC,JobB;JobB:JobA", s);
    char err[256] = "";
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_int_equal(dp_graph_job_count(g), 5);
    const char *names[] = {"JobA", "JobB", "JobC", "JobD", "JobE"};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(dp_graph_job_name(g, i), names[i]);
        assert_int_equal(dp_graph_job_id(g, names[i]), (long)i);
    }
    assert_null(dp_graph_job_name(g, 5));
    assert_int_equal(dp_graph_job_id(g, "nope"), -1);
    assert_string_equal(list(g, "JobA", false), "");
    assert_string_equal(list(g, "JobA", true), "JobB,JobC");
    assert_string_equal(list(g, "JobD", false), "JobB,JobC");
    assert_string_equal(list(g, "JobD", true), "JobE");
    assert_string_equal(list(g, "JobE", true), "");
    const uint32_t *ids;
    assert_int_equal(dp_graph_deps(g, 99, &ids), 0);
    assert_null(ids);
    dp_graph_free(g);
    tu_script_free(s);
}

/* 12 jobs, a dependency listed twice: validated lists are sorted and
 * without repeats. */
static void test_larger_graph_lists(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("k:j,e;a:;b:a;c:a;d:c,b,b;e:d;f:;g:f;h:g;i:;j:i;l:;m:l,a,k", s);
    assert_int_equal(dp_graph_validate(g, NULL, 0), DP_OK);
    assert_int_equal(dp_graph_job_count(g), 13);
    assert_string_equal(list(g, "d", false), "b,c");
    assert_string_equal(list(g, "a", true), "b,c,m");
    assert_string_equal(list(g, "m", false), "a,k,l");
    assert_string_equal(list(g, "k", false), "e,j");
    assert_string_equal(list(g, "e", true), "k");
    assert_string_equal(list(g, "b", true), "d");
    dp_graph_free(g);
    tu_script_free(s);
}

static void test_empty_graph_validates(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    char err[128] = "untouched";
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_int_equal(dp_graph_job_count(g), 0);
    assert_null(dp_graph_job_name(g, 0));
    dp_graph_free(g);
}

static void test_unknown_dependency(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A;C:B,Ghost", s);
    char err[256] = "";
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_EUNKNOWN_DEP);
    assert_string_equal(err, "job \"C\" depends on unknown job \"Ghost\"");
    /* Cached: the same answer again, with the message. */
    err[0] = '\0';
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_EUNKNOWN_DEP);
    assert_string_equal(err, "job \"C\" depends on unknown job \"Ghost\"");
    /* Lists are not available from a refused graph. */
    const uint32_t *ids;
    assert_int_equal(dp_graph_deps(g, 0, &ids), 0);
    /* Adding the missing job makes the graph valid. */
    assert_int_equal(add(g, "Ghost", err, sizeof err), DP_OK);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_string_equal(list(g, "C", false), "B,Ghost");
    dp_graph_free(g);
    tu_script_free(s);
}

static void test_self_dependency(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("A:;B:A,B", s);
    char err[256] = "";
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ESELF_DEP);
    assert_string_equal(err, "job \"B\" depends on itself");
    dp_graph_free(g);
    tu_script_free(s);
}

static void test_duplicate_name(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    char err[256] = "";
    assert_int_equal(add(g, "A", err, sizeof err), DP_OK);
    assert_int_equal(add(g, "B", err, sizeof err), DP_OK);
    assert_int_equal(add(g, "A", err, sizeof err), DP_EDUPLICATE);
    assert_string_equal(err, "duplicate job name \"A\"");
    /* A refused add changes nothing. */
    assert_int_equal(dp_graph_job_count(g), 2);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    dp_graph_free(g);
}

static void test_neither_run_nor_check(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.name = "lazy";
    char err[256] = "";
    assert_int_equal(dp_graph_add_job(g, &sp, err, sizeof err), DP_ENOJOB);
    assert_string_equal(err, "job \"lazy\" has neither run nor check");
    assert_int_equal(dp_graph_job_count(g), 0);
    /* Check-only is fine. */
    sp.check = noop;
    assert_int_equal(dp_graph_add_job(g, &sp, err, sizeof err), DP_OK);
    dp_graph_free(g);
}

static void test_invalid_specs(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = noop;
    char err[256] = "";
    assert_int_equal(dp_graph_add_job(g, &sp, err, sizeof err), DP_EINVAL); /* no name */
    sp.name = "";
    assert_int_equal(dp_graph_add_job(g, &sp, err, sizeof err), DP_EINVAL);
    sp.name = "j";
    sp.backoff.jitter = 1.5;
    assert_int_equal(dp_graph_add_job(g, &sp, err, sizeof err), DP_EINVAL);
    assert_non_null(strstr(err, "jitter"));
    sp.backoff.jitter = 0;
    sp.backoff.factor = -1;
    assert_int_equal(dp_graph_add_job(g, &sp, err, sizeof err), DP_EINVAL);
    assert_int_equal(dp_graph_job_count(g), 0);
    /* A dependency of a job that does not exist. */
    assert_int_equal(dp_graph_add_dep(g, "nobody", "x"), DP_ENOTFOUND);
    assert_int_equal(dp_graph_add_dep(g, NULL, "x"), DP_EINVAL);
    assert_int_equal(dp_graph_validate(NULL, err, sizeof err), DP_EINVAL);
    dp_graph_free(g);
}

/* a -> b -> c -> a, each depending on the next: the whole cycle, in order. */
static void test_cycle_message(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("a:b;b:c;c:a", s);
    char err[256] = "";
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ECYCLE);
    assert_non_null(strstr(err, "cycle: a -> b -> c -> a"));
    dp_graph_free(g);
    tu_script_free(s);
}

static void test_two_cycle(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("x:y;y:x", s);
    char err[256] = "";
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ECYCLE);
    assert_non_null(strstr(err, "cycle: x -> y -> x"));
    dp_graph_free(g);
    tu_script_free(s);
}

/* A cycle deep inside a 12-job graph, reached from jobs outside it: the
 * message shows only the cycle, whole and closed. */
static void test_cycle_in_larger_graph(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("a:;b:a;c:b,q;d:c;e:d;f:;g:f;p:r;q:p;r:g,q;h:g;i:h", s);
    char err[512] = "";
    assert_int_equal(dp_graph_job_count(g), 12);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ECYCLE);
    /* The walk enters the cycle from c at q: q depends on p, p on r, r on
     * q. */
    assert_non_null(strstr(err, "cycle: q -> p -> r -> q"));
    assert_null(strstr(err, "c ->"));
    assert_null(strstr(err, "-> g"));
    dp_graph_free(g);
    tu_script_free(s);
}

/* A long cycle through 11 jobs: every one of them is in the message. */
static void test_long_cycle(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("j00:j01;j01:j02;j02:j03;j03:j04;j04:j05;j05:j06;j06:j07;"
                             "j07:j08;j08:j09;j09:j10;j10:j00;z:j05",
                             s);
    char err[512] = "";
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ECYCLE);
    assert_non_null(strstr(err, "cycle: j00 -> j01 -> j02 -> j03 -> j04 -> j05 -> j06 -> "
                                "j07 -> j08 -> j09 -> j10 -> j00"));
    dp_graph_free(g);
    tu_script_free(s);
}

/* A refused graph does not run, and says why. */
static void test_run_refuses_invalid_graph(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("a:b;b:a;c:", s);
    char err[256] = "";
    assert_null(dp_graph_run(g, NULL, err, sizeof err));
    assert_non_null(strstr(err, "cycle: a -> b -> a"));
    assert_int_equal(atomic_load(&s->total_runs), 0);
    dp_graph_free(g);
    tu_script_free(s);
}

static int freed;
static void count_free(void *p)
{
    (void)p;
    freed++;
}

static void test_user_free_on_graph_free(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.run = noop;
    sp.user_free = count_free;
    freed = 0;
    sp.name = "one";
    assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_OK);
    sp.name = "two";
    assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_OK);
    sp.name = "one"; /* refused: its user stays the caller's */
    assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_EDUPLICATE);
    assert_int_equal(freed, 0);
    dp_graph_free(g);
    assert_int_equal(freed, 2);
    dp_graph_free(NULL);
}

/* Adding after validation re-validates: a new job, a new dependency that
 * makes a cycle. */
static void test_revalidate_after_change(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("b:a;a:", s);
    char err[256] = "";
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_int_equal(add(g, "0first", err, sizeof err), DP_OK);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_int_equal(dp_graph_job_id(g, "0first"), 0);
    assert_string_equal(list(g, "b", false), "a");
    assert_int_equal(dp_graph_add_dep(g, "a", "b"), DP_OK);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ECYCLE);
    assert_non_null(strstr(err, "cycle: a -> b -> a"));
    dp_graph_free(g);
    tu_script_free(s);
}

/* Jobs share policies (settings) when theirs are equal; each job still
 * answers with its own. Names resolve before and after validate (which
 * drops the name index and searches the sorted jobs), and a name added
 * again after validate is still a duplicate. */
static void test_policies_and_lookups_across_validate(void **state)
{
    (void)state;
    dp_graph_t *g = dp_graph_new();
    char name[32], err[256];
    for (unsigned i = 0; i < 300; i++) {
        dp_job_spec_t sp;
        dp_job_spec_init(&sp);
        snprintf(name, sizeof name, "job%03u", (i * 7) % 300); /* not in name order */
        sp.name = name;
        sp.run = noop;
        sp.timeout_ms = (i % 3) * 1000;
        sp.retries = i % 5;
        sp.plugin = i % 2 ? "odd" : NULL;
        assert_int_equal(dp_graph_add_job(g, &sp, err, sizeof err), DP_OK);
        if (i)
            assert_int_equal(dp_graph_add_dep(g, name, "job000"), DP_OK);
    }
    assert_int_equal(dp_graph_job_id(g, "nope"), -1);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    for (unsigned i = 0; i < 300; i++) {
        unsigned k = (i * 7) % 300;
        snprintf(name, sizeof name, "job%03u", k);
        assert_int_equal(dp_graph_job_id(g, name), (long)k);
        const char *plugin = dp_graph_job_plugin(g, k);
        if (i % 2)
            assert_string_equal(plugin, "odd");
        else
            assert_null(plugin);
        const uint32_t *ids;
        assert_int_equal(dp_graph_deps(g, k, &ids), k ? 1 : 0);
    }
    assert_int_equal(dp_graph_job_id(g, "job"), -1);
    assert_int_equal(dp_graph_job_id(g, "job300"), -1);
    assert_int_equal(dp_graph_job_id(g, "a"), -1);
    assert_int_equal(dp_graph_job_id(g, "zzz"), -1);
    assert_int_equal(add(g, "job150", err, sizeof err), DP_EDUPLICATE);
    assert_int_equal(add(g, "new", err, sizeof err), DP_OK);
    assert_int_equal(dp_graph_add_dep(g, "new", "job299"), DP_OK);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_int_equal(dp_graph_job_id(g, "new"), 300);
    assert_string_equal(list(g, "new", false), "job299");
    assert_string_equal(list(g, "job299", true), "new");
    /* Each job kept its own settings through the shared policies. */
    dp_result_t *r = dp_graph_run(g, NULL, err, sizeof err);
    assert_non_null(r);
    assert_true(dp_result_is_ready(r));
    assert_string_equal(dp_result_find(r, "job001")->plugin, "odd"); /* i = 43 */
    dp_result_free(r);
    dp_graph_free(g);
}

static void test_names_and_errors_text(void **state)
{
    (void)state;
    assert_string_equal(dp_status_name(DP_STATUS_UNKNOWN), "unknown");
    assert_string_equal(dp_status_name(DP_STATUS_SUCCESS), "success");
    assert_string_equal(dp_status_name(DP_STATUS_NOT_READY), "not_ready");
    assert_string_equal(dp_status_name(DP_STATUS_SKIPPED), "skipped");
    assert_string_equal(dp_status_name(DP_STATUS_FAILED), "failed");
    assert_string_equal(dp_run_outcome_name(DP_RUN_SUCCESS), "success");
    assert_string_equal(dp_run_outcome_name(DP_RUN_FAILED), "failed");
    assert_string_equal(dp_run_outcome_name(DP_RUN_NOT_READY), "not_ready");
    assert_string_equal(dp_run_outcome_name(DP_RUN_TIMEOUT), "timeout");
    assert_string_equal(dp_run_outcome_name(DP_RUN_CANCELLED), "cancelled");
    /* Exit codes of the command are the outcomes' values. */
    assert_int_equal(DP_RUN_FAILED, 1);
    assert_int_equal(DP_RUN_NOT_READY, 3);
    assert_int_equal(DP_RUN_TIMEOUT, 4);
    assert_int_equal(DP_RUN_CANCELLED, 130);
    for (int e = 0; e >= DP_ENOJOB; e--)
        assert_string_not_equal(dp_strerror(e), "unknown error");
    assert_string_equal(dp_strerror(-999), "unknown error");
    assert_string_equal(dp_strerror(DP_ECYCLE), "dependency cycle");
    assert_string_equal(dp_version(), DP_VERSION_STRING);
}

/* The cycle as job ids (dp__graph_cycle, for callers that format it
 * themselves, as the workflow file's reader does): the jobs of the message,
 * in its order, and only those; nothing for a graph without a cycle, and
 * nothing once the graph changed. The message stays as it was, whole. */
static const char *cycle_names(const dp_graph_t *g)
{
    static char buf[512];
    const uint32_t *ids = (const uint32_t *)(uintptr_t)1;
    size_t n = dp__graph_cycle(g, &ids);
    if (!n)
        assert_null(ids);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "," : "", dp_graph_job_name(g, ids[i]));
    return buf;
}

static void test_cycle_as_ids(void **state)
{
    (void)state;
    tu_script_t *s = tu_script_new();
    dp_graph_t *g = tu_graph("a:;b:a;c:b,q;d:c;e:d;f:;g:f;p:r;q:p;r:g,q;h:g;i:h", s);
    assert_string_equal(cycle_names(g), ""); /* not validated yet */
    char err[512] = "";
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ECYCLE);
    assert_string_equal(err, "cycle: q -> p -> r -> q (each job depends on the next)");
    assert_string_equal(cycle_names(g), "q,p,r");
    /* Asked again: the same answer, the same message. */
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ECYCLE);
    assert_string_equal(err, "cycle: q -> p -> r -> q (each job depends on the next)");
    assert_string_equal(cycle_names(g), "q,p,r");
    /* The graph changes: the cycle is forgotten until the next validate. */
    dp_job_spec_t sp;
    dp_job_spec_init(&sp);
    sp.name = "zz";
    sp.run = noop;
    assert_int_equal(dp_graph_add_job(g, &sp, NULL, 0), DP_OK);
    assert_string_equal(cycle_names(g), "");
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ECYCLE);
    assert_string_equal(cycle_names(g), "q,p,r");
    dp_graph_free(g);

    /* Jobs added out of name order: ids are name order after validate. */
    g = tu_graph("z2:z1;z1:m;m:z2;a0:m", s);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ECYCLE);
    assert_string_equal(err, "cycle: m -> z2 -> z1 -> m (each job depends on the next)");
    assert_string_equal(cycle_names(g), "m,z2,z1");
    dp_graph_free(g);

    /* Other errors and valid graphs: no cycle. */
    g = tu_graph("a:b;b:", s);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_OK);
    assert_string_equal(cycle_names(g), "");
    dp_graph_free(g);
    g = tu_graph("a:a", s);
    assert_int_equal(dp_graph_validate(g, err, sizeof err), DP_ESELF_DEP);
    assert_string_equal(cycle_names(g), "");
    dp_graph_free(g);
    assert_int_equal(dp__graph_cycle(NULL, &(const uint32_t *){NULL}), 0);
    tu_script_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_defaults),
        cmocka_unit_test(test_ids_and_csr),
        cmocka_unit_test(test_larger_graph_lists),
        cmocka_unit_test(test_empty_graph_validates),
        cmocka_unit_test(test_unknown_dependency),
        cmocka_unit_test(test_self_dependency),
        cmocka_unit_test(test_duplicate_name),
        cmocka_unit_test(test_neither_run_nor_check),
        cmocka_unit_test(test_invalid_specs),
        cmocka_unit_test(test_cycle_message),
        cmocka_unit_test(test_two_cycle),
        cmocka_unit_test(test_cycle_in_larger_graph),
        cmocka_unit_test(test_long_cycle),
        cmocka_unit_test(test_cycle_as_ids),
        cmocka_unit_test(test_run_refuses_invalid_graph),
        cmocka_unit_test(test_user_free_on_graph_free),
        cmocka_unit_test(test_revalidate_after_change),
        cmocka_unit_test(test_policies_and_lookups_across_validate),
        cmocka_unit_test(test_names_and_errors_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
