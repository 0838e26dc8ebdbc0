/* test_console.c - the command's console (host/src/cli/console.c), built
 * into this program: the start of a job's first attempt is reported
 * without the console's lock (issue 18: the lock was taken twice per job),
 * and its line still comes out in its place.
 *
 * The lock is made to stay held the way it does in real life: the
 * console's output is a pipe nobody reads, and a log line blocks in
 * write(2) under the lock once the pipe is full. A start reported then
 * returns at once (before: it waited for the lock, so for the reader); the
 * lines, once the pipe is read, are the log lines, then the job's start,
 * then its end, with the counts of the moment each was written. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "daggerpool/daggerpool.h"

typedef struct fix {
    console_t *con;
    FILE *out;
    int rfd;
    dp_graph_t *g;
    pthread_mutex_t mu;
    unsigned logged; /* log lines written by the logger (mu) */
    bool start_back; /* the start report returned (mu) */
    char *got;       /* what the reader read */
    size_t ngot;
} fix_t;

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static dp_outcome_t noop(dp_job_t *job, void *user)
{
    (void)job;
    (void)user;
    return DP_READY;
}

/* Logs 2000-byte lines until the pipe is full and a write blocks. */
static void *logger_main(void *arg)
{
    fix_t *f = arg;
    char msg[2001];
    memset(msg, 'x', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    for (int i = 0; i < 200; i++) {
        console_logf(f->con, DP_LOG_WARN, "filler %d %s", i, msg);
        pthread_mutex_lock(&f->mu);
        f->logged++;
        pthread_mutex_unlock(&f->mu);
    }
    return NULL;
}

static void *start_main(void *arg)
{
    fix_t *f = arg;
    dp_event_t ev = {.kind = DP_EV_ATTEMPT_START, .job = 0, .name = "a", .attempt = 1, .worker = 0, .time_ns = 1000000};
    console_event(f->con, &ev);
    pthread_mutex_lock(&f->mu);
    f->start_back = true;
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void *reader_main(void *arg)
{
    fix_t *f = arg;
    size_t cap = 1 << 20;
    f->got = malloc(cap);
    for (;;) {
        if (f->ngot + 65536 > cap)
            f->got = realloc(f->got, cap *= 2);
        ssize_t n = read(f->rfd, f->got + f->ngot, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        f->ngot += (size_t)n;
    }
    f->got[f->ngot] = '\0';
    return NULL;
}

static void test_start_while_lock_held(void **state)
{
    (void)state;
    fix_t f = {.ngot = 0};
    pthread_mutex_init(&f.mu, NULL);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    f.rfd = p[0];
    f.out = fdopen(p[1], "w");
    assert_non_null(f.out);
    f.g = dp_graph_new();
    char err[256];
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.run = noop;
    spec.name = "a";
    assert_int_equal(dp_graph_add_job(f.g, &spec, err, sizeof err), DP_OK);
    spec.name = "b";
    assert_int_equal(dp_graph_add_job(f.g, &spec, err, sizeof err), DP_OK);
    assert_int_equal(dp_graph_validate(f.g, err, sizeof err), DP_OK);

    /* Off a terminal, text, progress lines: the batching console. */
    f.con = console_new(f.out, CLI_LOG_TEXT, DP_LOG_INFO, true);
    assert_non_null(f.con);
    console_begin(f.con, f.g);

    pthread_t logger, starter, reader;
    assert_int_equal(pthread_create(&logger, NULL, logger_main, &f), 0);
    /* The logger is blocked (under the console's lock) once it has not
     * got on for half a second; the pipe holds ~64 KiB, ~32 lines. */
    unsigned last = UINT32_MAX;
    uint64_t since = now_ms();
    for (;;) {
        usleep(20000);
        pthread_mutex_lock(&f.mu);
        unsigned n = f.logged;
        pthread_mutex_unlock(&f.mu);
        if (n != last) {
            last = n;
            since = now_ms();
        } else if (now_ms() - since > 500) {
            break;
        }
    }
    assert_true(last < 200); /* it is blocked, not done */

    assert_int_equal(pthread_create(&starter, NULL, start_main, &f), 0);
    bool back = false;
    for (uint64_t end = now_ms() + 10000; !back && now_ms() < end;) {
        usleep(10000);
        pthread_mutex_lock(&f.mu);
        back = f.start_back;
        pthread_mutex_unlock(&f.mu);
    }

    /* Read the pipe: everything goes on and ends. */
    assert_int_equal(pthread_create(&reader, NULL, reader_main, &f), 0);
    pthread_join(logger, NULL);
    pthread_join(starter, NULL);
    dp_event_t end = {.kind = DP_EV_JOB_END,
                      .job = 0,
                      .name = "a",
                      .attempt = 1,
                      .worker = 0,
                      .time_ns = 2000000,
                      .status = DP_STATUS_SUCCESS};
    console_event(f.con, &end);
    console_end(f.con);
    console_free(f.con);
    fclose(f.out);
    pthread_join(reader, NULL);
    close(f.rfd);

    /* The start was reported while the lock was held, without waiting. */
    assert_true(back);
    /* Its line: after every log line written before it, before its end;
     * with the counts of when it was written. */
    static const char start_line[] = "[0/2]    0.001s a: started\n";
    const char *st = strstr(f.got, start_line);
    const char *en = strstr(f.got, "[1/2]    0.002s a: success after 1 attempt\n");
    assert_non_null(st);
    assert_non_null(en);
    assert_true(st < en);
    /* The logger's lines all come out; the start is among them or after
     * them, never lost; exactly one start line. */
    assert_null(strstr(st + sizeof start_line - 1, "a: started"));
    unsigned fillers = 0;
    for (const char *q = f.got; (q = strstr(q, "filler ")); q++)
        fillers++;
    assert_int_equal(fillers, 200);
    free(f.got);
    dp_graph_free(f.g);
    pthread_mutex_destroy(&f.mu);
}

/* Starts left pending by several workers come out oldest first, each
 * before its end, when nothing else is written (the flusher takes them
 * within its period), and the counts follow the ends. */
static void test_pending_starts_in_order(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fix_t f = {.rfd = p[0]};
    f.out = fdopen(p[1], "w");
    f.g = dp_graph_new();
    char err[256];
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.run = noop;
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        spec.name = names[i];
        assert_int_equal(dp_graph_add_job(f.g, &spec, err, sizeof err), DP_OK);
    }
    assert_int_equal(dp_graph_validate(f.g, err, sizeof err), DP_OK);
    f.con = console_new(f.out, CLI_LOG_TEXT, DP_LOG_INFO, true);
    console_begin(f.con, f.g);
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, reader_main, &f), 0);
    /* Worker 2 started c at 3 ms, worker 0 a at 5 ms, worker 1 b at 4 ms. */
    dp_event_t s[] = {
        {.kind = DP_EV_ATTEMPT_START, .job = 2, .name = "c", .attempt = 1, .worker = 2, .time_ns = 3000000},
        {.kind = DP_EV_ATTEMPT_START, .job = 0, .name = "a", .attempt = 1, .worker = 0, .time_ns = 5000000},
        {.kind = DP_EV_ATTEMPT_START, .job = 1, .name = "b", .attempt = 1, .worker = 1, .time_ns = 4000000},
    };
    for (int i = 0; i < 3; i++)
        console_event(f.con, &s[i]);
    /* Nothing else happens for a while: the flusher writes them. */
    usleep(200000);
    dp_event_t e = {.kind = DP_EV_JOB_END,
                    .job = 1,
                    .name = "b",
                    .attempt = 1,
                    .worker = 1,
                    .time_ns = 9000000,
                    .status = DP_STATUS_SUCCESS};
    console_event(f.con, &e);
    console_end(f.con);
    console_free(f.con);
    fclose(f.out);
    pthread_join(reader, NULL);
    close(f.rfd);
    assert_string_equal(f.got, "[0/3]    0.003s c: started\n"
                               "[0/3]    0.004s b: started\n"
                               "[0/3]    0.005s a: started\n"
                               "[1/3]    0.009s b: success after 1 attempt\n");
    free(f.got);
    dp_graph_free(f.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_while_lock_held),
        cmocka_unit_test(test_pending_starts_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
