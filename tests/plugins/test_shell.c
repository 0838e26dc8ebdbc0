/* test_shell.c - shell.command: the exit-code convention, the stderr tail,
 * env, cwd, argv without a shell, checks, cancellation that leaves no
 * process behind, timeouts that hold whatever the command writes, and what
 * becomes of the processes a command leaves in the background. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ptest.h"

struct outcome {
    dp_status_t status;
    char error[1024];
    unsigned attempts;
};

static struct outcome shell(dp_params_t *p, const dp_job_spec_t *spec, ptest_log_t *log)
{
    dp_plugins_t *pl = ptest_registry(log);
    dp_graph_t *g;
    dp_result_t *r = ptest_run1(pl, "shell.command", p, spec, NULL, log, &g);
    const dp_job_result_t *j = dp_result_find(r, "J");
    struct outcome o = {.status = j->status, .attempts = j->attempts};
    snprintf(o.error, sizeof(o.error), "%s", j->error ? j->error : "");
    dp_result_free(r);
    dp_graph_free(g);
    dp_plugins_free(pl);
    dp_params_free(p);
    return o;
}

static dp_params_t *cmd(const char *command)
{
    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "command", command);
    return p;
}

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(shell(cmd("exit 0"), NULL, NULL).status, DP_STATUS_SUCCESS);
    assert_int_equal(shell(cmd("exit 75"), NULL, NULL).status, DP_STATUS_NOT_READY);
    dp_params_t *p = cmd("exit 3");
    dp_params_set_int(p, "not_ready_exit", 3);
    assert_int_equal(shell(p, NULL, NULL).status, DP_STATUS_NOT_READY);
    struct outcome o = shell(cmd("exit 75; "), NULL, NULL);
    assert_int_equal(o.status, DP_STATUS_NOT_READY);
    o = shell(cmd("exit 2"), NULL, NULL);
    assert_int_equal(o.status, DP_STATUS_FAILED);
    assert_string_equal(o.error, "exit status 2");
}

static void test_stderr_tail_and_log(void **state)
{
    (void)state;
    ptest_log_t log;
    ptest_log_init(&log);
    struct outcome o = shell(cmd("echo to-stdout; for i in 1 2 3 4 5 6 7; do echo line$i >&2; "
                                 "done; printf 'no newline' >&2; exit 4"),
                             NULL, &log);
    assert_int_equal(o.status, DP_STATUS_FAILED);
    assert_string_equal(o.error, "exit status 4: line4; line5; line6; line7; no newline");
    assert_true(ptest_log_has(&log, "info job=J plugin=shell: to-stdout\n"));
    assert_true(ptest_log_has(&log, "warn job=J plugin=shell: line1\n"));
    assert_true(ptest_log_has(&log, "warn job=J plugin=shell: no newline\n"));
    ptest_log_free(&log);
}

static void test_killed_by_signal(void **state)
{
    (void)state;
    dp_params_t *p = dp_params_new();
    const char *argv[] = {"/bin/sh", "-c", "echo about to crash >&2; kill -SEGV $$"};
    dp_params_set_list(p, "argv", argv, 3);
    struct outcome o = shell(p, NULL, NULL);
    assert_int_equal(o.status, DP_STATUS_FAILED);
    assert_string_equal(o.error, "killed by signal SIGSEGV: about to crash");
}

static void test_env_cwd_and_argv(void **state)
{
    (void)state;
    ptest_log_t log;
    ptest_log_init(&log);
    char *dir = ptest_tmpdir();
    char real[PATH_MAX], script[PATH_MAX * 2];
    assert_non_null(realpath(dir, real));
    dp_params_t *p = dp_params_new();
    snprintf(script, sizeof(script),
             "test \"$GREETING\" = 'hello world' && test \"$(pwd -P)\" = '%s' && "
             "test \"$PATH\" != '' && echo env-ok",
             real);
    dp_params_set_string(p, "command", script);
    dp_params_set_string(p, "cwd", dir);
    dp_params_t *env = dp_params_add_group(p, "env");
    dp_params_set_string(env, "GREETING", "hello world");
    assert_int_equal(shell(p, NULL, &log).status, DP_STATUS_SUCCESS);
    assert_true(ptest_log_has(&log, "shell: env-ok\n"));

    /* argv: no shell, so "$HOME" stays as it is. */
    p = dp_params_new();
    const char *argv[] = {"printf", "%s|%s\\n", "$HOME", "two words"};
    dp_params_set_list(p, "argv", argv, 4);
    assert_int_equal(shell(p, NULL, &log).status, DP_STATUS_SUCCESS);
    assert_true(ptest_log_has(&log, "shell: $HOME|two words\n"));

    p = dp_params_new();
    const char *missing[] = {"no-such-program-for-daggerpool"};
    dp_params_set_list(p, "argv", missing, 1);
    struct outcome o = shell(p, NULL, NULL);
    assert_int_equal(o.status, DP_STATUS_FAILED);
    assert_string_equal(o.error, "cannot run 'no-such-program-for-daggerpool': No such file or directory");
    ptest_rmrf(dir);
    free(dir);
    ptest_log_free(&log);
}

static void test_check(void **state)
{
    (void)state;
    dp_params_t *p = cmd("true");
    dp_params_set_string(p, "check", "exit 75");
    assert_int_equal(shell(p, NULL, NULL).status, DP_STATUS_NOT_READY);
    p = cmd("true");
    const char *argv[] = {"false"};
    dp_params_set_list(p, "check_argv", argv, 1);
    struct outcome o = shell(p, NULL, NULL);
    assert_int_equal(o.status, DP_STATUS_FAILED);
    assert_string_equal(o.error, "exit status 1");

    /* Polled until the check passes: a counter file ticks up per probe. */
    char *dir = ptest_tmpdir();
    char check[PATH_MAX * 2];
    snprintf(check, sizeof(check),
             "n=$(cat %s/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s/n; "
             "test $n -ge 3 || exit 75",
             dir, dir);
    p = cmd("true");
    dp_params_set_string(p, "check", check);
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.readiness.period_ms = 10;
    spec.readiness.timeout_ms = 30000;
    assert_int_equal(shell(p, &spec, NULL).status, DP_STATUS_SUCCESS);
    ptest_rmrf(dir);
    free(dir);
}

static void test_bad_params(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "J";
    char err[1024];
    dp_params_t *p = cmd("true");
    const char *argv[] = {"true"};
    dp_params_set_list(p, "argv", argv, 1);
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "shell.command", p, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "give `command` or `argv`, not both"));
    dp_params_free(p);
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "shell.command", NULL, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "needs `command`"));
    p = cmd("true");
    dp_params_set_int(p, "not_ready_exit", 0);
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "shell.command", p, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "not_ready_exit must be 1..255"));
    dp_params_free(p);
    p = cmd("true");
    dp_params_t *env = dp_params_add_group(p, "env");
    dp_params_set_int(env, "N", 1);
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "shell.command", p, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "param 'env.N': expected a string, found an integer"));
    dp_params_free(p);
    dp_graph_free(g);
    dp_plugins_free(pl);
}

/* True once pid is gone (or a zombie of someone else's). */
static bool gone(pid_t pid)
{
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] == 'Z';
}

static pid_t read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int pid = -1;
    if (fscanf(f, "%d", &pid) != 1)
        pid = -1;
    fclose(f);
    return pid;
}

/* A long command under a job timeout: SIGTERM to the whole group, and
 * SIGKILL for a child that ignores SIGTERM; nothing survives. */
static void cancelled(const char *body, uint64_t grace_ms)
{
    char *dir = ptest_tmpdir();
    char script[PATH_MAX * 3], pf1[PATH_MAX], pf2[PATH_MAX];
    snprintf(pf1, sizeof(pf1), "%s/sh.pid", dir);
    snprintf(pf2, sizeof(pf2), "%s/child.pid", dir);
    snprintf(script, sizeof(script), "echo $$ > %s; %s & echo $! > %s; wait", pf1, body, pf2);
    dp_params_t *p = cmd(script);
    char grace[32];
    snprintf(grace, sizeof(grace), "%llums", (unsigned long long)grace_ms);
    dp_params_set_string(p, "kill_grace", grace);
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.timeout_ms = 500;
    uint64_t t0 = ptest_now_ms();
    struct outcome o = shell(p, &spec, NULL);
    uint64_t took = ptest_now_ms() - t0;
    assert_int_equal(o.status, DP_STATUS_FAILED);
    assert_non_null(strstr(o.error, "timed out after"));
    assert_true(took < 15000);
    pid_t sh = read_pid(pf1), child = read_pid(pf2);
    assert_true(sh > 0 && child > 0);
    /* The grandchild is reaped by whoever adopted it; give it a moment. */
    for (int i = 0; i < 500 && !(gone(sh) && gone(child)); i++)
        usleep(10000);
    assert_true(gone(sh));
    assert_true(gone(child));
    ptest_rmrf(dir);
    free(dir);
}

static void test_cancel_kills_the_group(void **state)
{
    (void)state;
    cancelled("sleep 60", 5000);
}

static void test_cancel_kills_what_ignores_sigterm(void **state)
{
    (void)state;
    uint64_t t0 = ptest_now_ms();
    cancelled("sh -c 'trap \"\" TERM; sleep 60; sleep 60'", 300);
    assert_true(ptest_now_ms() - t0 >= 500);
}

/* A test that would hang on a regression ends the program instead (the
 * default action of SIGALRM), so the suite reports it rather than wait for
 * ctest's timeout. */
static void watchdog(void)
{
    alarm(60);
}

/* A pid written by the command into DIR/NAME (waits for it a little: a
 * background child may write it after the command's own end). */
static pid_t wait_pid(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    pid_t pid = -1;
    for (int i = 0; i < 200 && (pid = read_pid(path)) <= 0; i++)
        usleep(10000);
    return pid;
}

/* Waits up to 5 s for pid to be gone. */
static bool gone_soon(pid_t pid)
{
    for (int i = 0; i < 500 && !gone(pid); i++)
        usleep(10000);
    return gone(pid);
}

/* Output first, then a long wait: the job's timeout still holds (the pipes
 * were read with blocking reads until EOF, which `sleep` kept away). */
static void test_timeout_after_output(void **state)
{
    (void)state;
    watchdog();
    char *dir = ptest_tmpdir();
    char script[PATH_MAX * 2];
    snprintf(script, sizeof(script),
             "echo started; echo $$ > %s/sh.pid; echo on stderr >&2; "
             "sleep 20",
             dir);
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.timeout_ms = 500;
    uint64_t t0 = ptest_now_ms();
    struct outcome o = shell(cmd(script), &spec, NULL);
    uint64_t took = ptest_now_ms() - t0;
    assert_int_equal(o.status, DP_STATUS_FAILED);
    assert_string_equal(o.error, "timed out after 500ms");
    assert_true(took < 10000);
    assert_true(gone_soon(wait_pid(dir, "sh.pid")));
    ptest_rmrf(dir);
    free(dir);
}

/* A command that writes without pause (faster than lines can be logged)
 * cannot keep the timeout from being seen. */
static void test_timeout_while_flooding(void **state)
{
    (void)state;
    watchdog();
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.timeout_ms = 500;
    uint64_t t0 = ptest_now_ms();
    struct outcome o = shell(cmd("yes; exit 1"), &spec, NULL);
    assert_int_equal(o.status, DP_STATUS_FAILED);
    assert_string_equal(o.error, "timed out after 500ms");
    assert_true(ptest_now_ms() - t0 < 10000);
    /* The same on stderr, which is also kept for the message. */
    t0 = ptest_now_ms();
    o = shell(cmd("yes 'on stderr' >&2"), &spec, NULL);
    assert_int_equal(o.status, DP_STATUS_FAILED);
    assert_string_equal(o.error, "timed out after 500ms");
    assert_true(ptest_now_ms() - t0 < 10000);
}

/* stderr fills (more than a pipe holds) while stdout stays open: both are
 * read, the command ends, and the message carries the last lines of stderr
 * whole, however long the ones before them were. */
static void test_stderr_beyond_the_pipe(void **state)
{
    (void)state;
    watchdog();
    ptest_log_t log;
    ptest_log_init(&log);
    struct outcome o = shell(cmd("echo x; head -c 200000 /dev/zero | tr '\\0' z >&2; echo >&2; "
                                 "echo last words >&2; echo done; exit 3"),
                             NULL, &log);
    assert_int_equal(o.status, DP_STATUS_FAILED);
    const char *suffix = "; last words";
    size_t n = strlen(o.error), k = strlen(suffix);
    assert_true(n > k);
    assert_string_equal(o.error + n - k, suffix);
    assert_true(strncmp(o.error, "exit status 3: zzzz", 19) == 0);
    assert_non_null(strstr(o.error, "z...; ")); /* a long line, cut and marked */
    assert_true(ptest_log_has(&log, "info job=J plugin=shell: done\n"));
    ptest_log_free(&log);

    /* The reproducer of issue 12: it used to hang for good. */
    assert_int_equal(shell(cmd("echo x; head -c 100000 /dev/zero >&2; echo done"), NULL, NULL).status,
                     DP_STATUS_SUCCESS);
}

/* A background child holding the output does not keep the job once the
 * command (the shell) has exited, and is stopped: nothing outlives the job. */
static void test_background_child_holding_output(void **state)
{
    (void)state;
    watchdog();
    char *dir = ptest_tmpdir();
    char script[PATH_MAX * 2];
    snprintf(script, sizeof(script), "sleep 20 & echo $! > %s/bg.pid; echo bye", dir);
    uint64_t t0 = ptest_now_ms();
    struct outcome o = shell(cmd(script), NULL, NULL);
    assert_int_equal(o.status, DP_STATUS_SUCCESS);
    assert_true(ptest_now_ms() - t0 < 5000);
    assert_true(gone_soon(wait_pid(dir, "bg.pid")));

    /* One that ignores SIGTERM gets SIGKILL after kill_grace. */
    snprintf(script, sizeof(script),
             "sh -c 'trap \"\" TERM; echo $$ > %s/stubborn.pid; sleep 20; sleep 20' & "
             "while [ ! -s %s/stubborn.pid ]; do sleep 0.01; done; echo bye",
             dir, dir);
    dp_params_t *p = cmd(script);
    dp_params_set_string(p, "kill_grace", "300ms");
    t0 = ptest_now_ms();
    o = shell(p, NULL, NULL);
    assert_int_equal(o.status, DP_STATUS_SUCCESS);
    assert_true(ptest_now_ms() - t0 < 5000);
    assert_true(gone_soon(wait_pid(dir, "stubborn.pid")));

    /* The command's own status stands. */
    snprintf(script, sizeof(script), "sleep 20 & echo $! > %s/bg2.pid; echo oops >&2; exit 7", dir);
    o = shell(cmd(script), NULL, NULL);
    assert_int_equal(o.status, DP_STATUS_FAILED);
    assert_string_equal(o.error, "exit status 7: oops");
    assert_true(gone_soon(wait_pid(dir, "bg2.pid")));
    ptest_rmrf(dir);
    free(dir);
}

/* One that does not hold the output is stopped all the same. */
static void test_background_child_quiet(void **state)
{
    (void)state;
    watchdog();
    char *dir = ptest_tmpdir();
    char script[PATH_MAX * 2];
    snprintf(script, sizeof(script), "sleep 20 >/dev/null 2>&1 & echo $! > %s/bg.pid", dir);
    assert_int_equal(shell(cmd(script), NULL, NULL).status, DP_STATUS_SUCCESS);
    assert_true(gone_soon(wait_pid(dir, "bg.pid")));
    ptest_rmrf(dir);
    free(dir);
}

/* keep_background = true: the job ends with the command, and what it
 * started keeps running. */
static void test_keep_background(void **state)
{
    (void)state;
    watchdog();
    char *dir = ptest_tmpdir();
    char script[PATH_MAX * 2];
    snprintf(script, sizeof(script), "sleep 20 >/dev/null 2>&1 & echo $! > %s/bg.pid; echo hi", dir);
    dp_params_t *p = cmd(script);
    dp_params_set_bool(p, "keep_background", true);
    uint64_t t0 = ptest_now_ms();
    assert_int_equal(shell(p, NULL, NULL).status, DP_STATUS_SUCCESS);
    assert_true(ptest_now_ms() - t0 < 5000);
    pid_t bg = wait_pid(dir, "bg.pid");
    assert_true(bg > 0);
    usleep(200000);
    assert_false(gone(bg));
    kill(bg, SIGKILL);
    assert_true(gone_soon(bg));

    /* Kept, but still holding the output: the job does not wait for it. */
    snprintf(script, sizeof(script), "sleep 20 & echo $! > %s/bg2.pid; echo hi", dir);
    p = cmd(script);
    dp_params_set_bool(p, "keep_background", true);
    t0 = ptest_now_ms();
    assert_int_equal(shell(p, NULL, NULL).status, DP_STATUS_SUCCESS);
    assert_true(ptest_now_ms() - t0 < 5000);
    bg = wait_pid(dir, "bg2.pid");
    assert_true(bg > 0);
    kill(bg, SIGKILL);
    assert_true(gone_soon(bg));
    ptest_rmrf(dir);
    free(dir);
}

/* The check uses the same runner: a probe that prints and then hangs is
 * cut at its probe timeout, and its processes are stopped. */
static void test_check_timeout_after_output(void **state)
{
    (void)state;
    watchdog();
    char *dir = ptest_tmpdir();
    char check[PATH_MAX * 2];
    snprintf(check, sizeof(check), "echo probing; echo $$ > %s/check.pid; sleep 20", dir);
    dp_params_t *p = cmd("true");
    dp_params_set_string(p, "check", check);
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.readiness.probe_timeout_ms = 500;
    uint64_t t0 = ptest_now_ms();
    struct outcome o = shell(p, &spec, NULL);
    assert_int_equal(o.status, DP_STATUS_FAILED);
    assert_non_null(strstr(o.error, "readiness probe timed out after 500ms"));
    assert_true(ptest_now_ms() - t0 < 10000);
    assert_true(gone_soon(wait_pid(dir, "check.pid")));
    ptest_rmrf(dir);
    free(dir);
}

static void test_bad_keep_background(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "J";
    char err[1024];
    dp_params_t *p = cmd("true");
    dp_params_set_string(p, "keep_background", "yes");
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "shell.command", p, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "param 'keep_background': expected a boolean, found a string"));
    dp_params_free(p);
    dp_graph_free(g);
    dp_plugins_free(pl);
}

static void test_no_zombies(void **state)
{
    (void)state;
    /* Every child the plugin started has been reaped. */
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* test_shell [PATTERN]: only the tests whose names match (cmocka's
 * wildcards), e.g. to run one against another build of the plugin. */
int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_stderr_tail_and_log),
        cmocka_unit_test(test_killed_by_signal),
        cmocka_unit_test(test_env_cwd_and_argv),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_cancel_kills_the_group),
        cmocka_unit_test(test_cancel_kills_what_ignores_sigterm),
        cmocka_unit_test(test_timeout_after_output),
        cmocka_unit_test(test_timeout_while_flooding),
        cmocka_unit_test(test_stderr_beyond_the_pipe),
        cmocka_unit_test(test_background_child_holding_output),
        cmocka_unit_test(test_background_child_quiet),
        cmocka_unit_test(test_keep_background),
        cmocka_unit_test(test_check_timeout_after_output),
        cmocka_unit_test(test_bad_keep_background),
        cmocka_unit_test(test_no_zombies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
