/* test_net_fs.c - net.tcp_connect against a listener of our own on
 * 127.0.0.1 and a closed port; fs.exists before and after a file appears. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "ptest.h"

/* A socket bound to 127.0.0.1 on a free port; listening if asked. */
static int bound_socket(int *port, bool listening)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    if (listening)
        assert_int_equal(listen(fd, 4), 0);
    return fd;
}

static dp_status_t tcp(dp_plugins_t *pl, const char *host, int port, const dp_job_spec_t *spec, char *error, size_t len)
{
    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "host", host);
    dp_params_set_int(p, "port", port);
    dp_params_set_string(p, "connect_timeout", "2s");
    dp_graph_t *g;
    dp_result_t *r = ptest_run1(pl, "net.tcp_connect", p, spec, NULL, NULL, &g);
    const dp_job_result_t *j = dp_result_find(r, "J");
    dp_status_t s = j->status;
    snprintf(error, len, "%s", j->error ? j->error : "");
    dp_result_free(r);
    dp_graph_free(g);
    dp_params_free(p);
    return s;
}

static void test_tcp_connect(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    char err[512];
    int port;
    int lfd = bound_socket(&port, true);
    assert_int_equal(tcp(pl, "127.0.0.1", port, NULL, err, sizeof(err)), DP_STATUS_SUCCESS);
    close(lfd);

    /* Bound but not listening: the port is ours and refuses connections. */
    int cfd = bound_socket(&port, false);
    assert_int_equal(tcp(pl, "127.0.0.1", port, NULL, err, sizeof(err)), DP_STATUS_NOT_READY);
    close(cfd);

    /* A name that cannot be valid fails without asking any DNS server. */
    assert_int_equal(tcp(pl, "no..such..host", 80, NULL, err, sizeof(err)), DP_STATUS_FAILED);
    assert_non_null(strstr(err, "cannot resolve host 'no..such..host'"));
    dp_plugins_free(pl);
}

struct later {
    int fd, port;
    unsigned delay_ms;
};

static void *listen_later(void *arg)
{
    struct later *l = arg;
    usleep(l->delay_ms * 1000);
    assert_int_equal(listen(l->fd, 4), 0);
    return NULL;
}

static void test_tcp_connect_polls_until_listening(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    struct later l = {.delay_ms = 200};
    l.fd = bound_socket(&l.port, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, listen_later, &l), 0);
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.readiness.period_ms = 20;
    spec.readiness.timeout_ms = 20000;
    char err[512];
    assert_int_equal(tcp(pl, "127.0.0.1", l.port, &spec, err, sizeof(err)), DP_STATUS_SUCCESS);
    pthread_join(th, NULL);
    close(l.fd);
    dp_plugins_free(pl);
}

static void test_tcp_bad_params(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    dp_graph_t *g = dp_graph_new();
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.name = "J";
    char err[1024];
    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "host", "127.0.0.1");
    dp_params_set_int(p, "port", 70000);
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "net.tcp_connect", p, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "between 1 and 65535"));
    dp_params_free(p);
    dp_graph_free(g);
    dp_plugins_free(pl);
}

static dp_status_t exists(dp_plugins_t *pl, const char *path, const dp_job_spec_t *spec)
{
    dp_params_t *p = dp_params_new();
    dp_params_set_string(p, "path", path);
    dp_graph_t *g;
    dp_result_t *r = ptest_run1(pl, "fs.exists", p, spec, NULL, NULL, &g);
    dp_status_t s = dp_result_find(r, "J")->status;
    dp_result_free(r);
    dp_graph_free(g);
    dp_params_free(p);
    return s;
}

struct touch {
    char path[PATH_MAX];
};

static void *touch_later(void *arg)
{
    struct touch *t = arg;
    usleep(150 * 1000);
    FILE *f = fopen(t->path, "w");
    assert_non_null(f);
    fclose(f);
    return NULL;
}

static void test_fs_exists(void **state)
{
    (void)state;
    dp_plugins_t *pl = ptest_registry(NULL);
    char *dir = ptest_tmpdir();
    struct touch t;
    snprintf(t.path, sizeof(t.path), "%s/ready.flag", dir);
    assert_int_equal(exists(pl, t.path, NULL), DP_STATUS_NOT_READY);
    assert_int_equal(exists(pl, dir, NULL), DP_STATUS_SUCCESS);

    /* Polled: ready once the file appears. */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, touch_later, &t), 0);
    dp_job_spec_t spec;
    dp_job_spec_init(&spec);
    spec.readiness.period_ms = 20;
    spec.readiness.timeout_ms = 20000;
    assert_int_equal(exists(pl, t.path, &spec), DP_STATUS_SUCCESS);
    pthread_join(th, NULL);
    assert_int_equal(exists(pl, t.path, NULL), DP_STATUS_SUCCESS);

    dp_graph_t *g = dp_graph_new();
    dp_job_spec_init(&spec);
    spec.name = "J";
    char err[1024];
    assert_int_equal(dp_plugins_add_job(pl, g, &spec, "fs.exists", NULL, err, sizeof(err)), DP_EINVAL);
    assert_non_null(strstr(err, "needs a non-empty `path`"));
    dp_graph_free(g);
    ptest_rmrf(dir);
    free(dir);
    dp_plugins_free(pl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_connect),
        cmocka_unit_test(test_tcp_connect_polls_until_listening),
        cmocka_unit_test(test_tcp_bad_params),
        cmocka_unit_test(test_fs_exists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
