/*
 * net.c - the net plugin: readiness on the network.
 *
 *   net.tcp_connect  ready once a TCP connection to `host`:`port` opens (it
 *                    is closed at once). Refused, unreachable or timed out
 *                    (`connect_timeout`, default 5s, and never past the
 *                    job's deadline) is not ready; a host name that does not
 *                    resolve is an error.
 *
 * The connect is non-blocking and waited for with poll(2) together with the
 * host's cancellation fd, so a cancelled run does not wait for a slow peer.
 * Name resolution (getaddrinfo) cannot be interrupted; it is bounded by the
 * resolver's own timeouts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <daggerpool/plugin.h>

static const dp_host_api *host;

struct tcp_state {
    const char *host; /* owned by the params */
    char port[8];
    uint64_t connect_timeout_ms;
};

static int tcp_create(dp_plugin_ctx *ctx, const dp_params *params, void **state)
{
    static const char *const known[] = {"host", "port", "connect_timeout", NULL};
    if (host->params_check_known(ctx, params, known) != 0)
        return -1;
    struct tcp_state s = {.host = NULL, .connect_timeout_ms = 5000};
    int rc = host->param_string(params, "host", &s.host);
    if (rc < 0)
        return -1;
    if (rc == DP_PARAM_ABSENT || !*s.host) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "net.tcp_connect needs a `host` param (a name or an address)");
        return -1;
    }
    int64_t port = 0;
    rc = host->param_int(params, "port", &port);
    if (rc < 0)
        return -1;
    if (rc == DP_PARAM_ABSENT || port < 1 || port > 65535) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "net.tcp_connect needs a `port` param between 1 and 65535%s",
                        rc == DP_PARAM_ABSENT ? "" : " (got one outside that range)");
        return -1;
    }
    snprintf(s.port, sizeof(s.port), "%d", (int)port);
    if (host->param_duration_ms(params, "connect_timeout", &s.connect_timeout_ms) < 0)
        return -1;
    if (s.connect_timeout_ms == 0) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "net.tcp_connect: connect_timeout must be more than 0");
        return -1;
    }
    struct tcp_state *p = malloc(sizeof(*p));
    if (!p) {
        host->set_error(ctx, 0, "out of memory");
        return -1;
    }
    *p = s;
    *state = p;
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One address: 0 connected, 1 not (why in buf), -1 cancelled. */
static int try_connect(dp_plugin_ctx *ctx, const struct addrinfo *ai, uint64_t timeout_ms, char *why, size_t len)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        snprintf(why, len, "socket: %s", strerror(errno));
        return 1;
    }
    int result = 1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        result = 0;
        goto out;
    }
    if (errno != EINPROGRESS) {
        snprintf(why, len, "%s", strerror(errno));
        goto out;
    }
    int cfd = host->cancel_fd(ctx);
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (host->is_cancelled(ctx)) {
            result = -1;
            goto out;
        }
        uint64_t now = now_ms();
        if (now >= deadline) {
            snprintf(why, len, "no answer within %llu ms", (unsigned long long)timeout_ms);
            goto out;
        }
        uint64_t wait = deadline - now;
        /* Without a cancel fd, wake up now and then to ask. */
        if (cfd < 0 && wait > 100)
            wait = 100;
        struct pollfd pfd[2] = {{.fd = fd, .events = POLLOUT}, {.fd = cfd, .events = POLLIN}};
        int n = poll(pfd, cfd >= 0 ? 2 : 1, (int)wait);
        if (n < 0 && errno != EINTR) {
            snprintf(why, len, "poll: %s", strerror(errno));
            goto out;
        }
        if (n > 0 && pfd[0].revents) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                soerr = errno;
            if (soerr == 0)
                result = 0;
            else
                snprintf(why, len, "%s", strerror(soerr));
            goto out;
        }
    }
out:
    close(fd);
    return result;
}

static dp_plugin_result tcp_check(dp_plugin_ctx *ctx, void *state)
{
    const struct tcp_state *s = state;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(s->host, s->port, &hints, &res);
    if (gai == EAI_AGAIN) {
        /* The resolver is having trouble, not the name: worth waiting for. */
        host->log(ctx, DP_PLUGIN_LOG_WARN, "cannot resolve %s yet: %s", s->host, gai_strerror(gai));
        return DP_PLUGIN_NOT_READY;
    }
    if (gai != 0) {
        host->set_error(ctx, DP_PLUGIN_ERROR_PERMANENT, "cannot resolve host '%s': %s", s->host,
                        gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        return DP_PLUGIN_ERROR;
    }
    uint64_t timeout = s->connect_timeout_ms;
    int64_t left = host->remaining_ms(ctx);
    if (left >= 0 && (uint64_t)left < timeout)
        timeout = (uint64_t)left;
    char why[256] = "no address";
    dp_plugin_result r = DP_PLUGIN_NOT_READY;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int c = try_connect(ctx, ai, timeout, why, sizeof(why));
        if (c == 0) {
            r = DP_PLUGIN_READY;
            break;
        }
        if (c < 0) {
            host->set_error(ctx, 0, "connect to %s:%s: cancelled", s->host, s->port);
            r = DP_PLUGIN_ERROR;
            break;
        }
    }
    freeaddrinfo(res);
    if (r == DP_PLUGIN_NOT_READY)
        host->log(ctx, DP_PLUGIN_LOG_INFO, "%s:%s not accepting connections yet: %s", s->host, s->port, why);
    return r;
}

static const dp_job_type tcp_type = {
    .struct_size = sizeof(dp_job_type),
    .name = "tcp_connect",
    .description = "ready once a TCP connection to host:port opens",
    .create = tcp_create,
    .check = tcp_check,
    .destroy = free,
};

static const dp_job_type *const types[] = {&tcp_type, NULL};

static const dp_plugin_desc desc = {
    .struct_size = sizeof(dp_plugin_desc),
    .abi_major = DP_PLUGIN_ABI_MAJOR,
    .abi_minor = DP_PLUGIN_ABI_MINOR,
    .name = "net",
    .version = "1.0.0",
    .description = "network readiness: tcp_connect",
    .job_types = types,
};

DP_PLUGIN_EXPORT const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h);
const dp_plugin_desc *DP_PLUGIN_ENTRY(const dp_host_api *h)
{
    host = h;
    return &desc;
}
