/* http_server.c - the endpoints of `watch --listen` on libmicrohttpd
 * (http_server.h; docs/service.md).
 *
 * libmicrohttpd parses every request; this file only routes and answers.
 * Bounds, so that no client can hold the loop or the process: a fixed
 * number of connections (beyond it the kernel's backlog holds them), an
 * idle timeout, a memory bound per connection (a longer request line or
 * header is refused by libmicrohttpd with 4xx), GET and HEAD only, and two
 * threads of the server's own. A response is served from a reference to
 * the snapshot of the moment, so a slow reader holds memory, never a lock
 * the loop takes. The server's threads run at the lowest scheduling
 * priority (SCHED_IDLE), so that however many clients come, a run's
 * workers and the loop get the CPU first. */
#include "http_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "graph_svg.h"
#include "metrics.h"
#include "status_page.h"
#include "util.h"

#define HTTP_THREADS 2
#define HTTP_CONNECTIONS 512
#define HTTP_IDLE_SECONDS 10
#define HTTP_CONNECTION_MEMORY (32 * 1024)
#define HTTP_BACKLOG 1024

struct svc_http {
    struct MHD_Daemon *d;
    svc_t *svc;
};

static const char ctype_text[] = "text/plain; charset=utf-8";
static const char ctype_json[] = "application/json";
static const char ctype_metrics[] = "text/plain; version=0.0.4; charset=utf-8";

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code, struct MHD_Response *r, const char *ctype)
{
    if (!r)
        return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* A short body of our own (copied). */
static enum MHD_Result send_text(struct MHD_Connection *c, unsigned code, const char *ctype, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_text(struct MHD_Connection *c, unsigned code, const char *ctype, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    return respond(c, code, MHD_create_response_from_buffer((size_t)n, buf, MHD_RESPMEM_MUST_COPY), ctype);
}

/* A malloc'd body, freed when sent. */
static enum MHD_Result send_owned(struct MHD_Connection *c, unsigned code, const char *ctype, char *body, size_t len)
{
    if (!body)
        return send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, ctype_text, "out of memory\n");
    return respond(c, code, MHD_create_response_from_buffer_with_free_callback(len, body, free), ctype);
}

static void release_cb(void *cls)
{
    svc_snapshot_release(cls);
}

/* A body inside the snapshot p: the reference goes with the response. */
static enum MHD_Result send_snapshot(struct MHD_Connection *c, unsigned code, const char *ctype, svc_snapshot_t *p,
                                     const char *body, size_t len)
{
    __atomic_add_fetch(&p->refs, 1, __ATOMIC_ACQ_REL);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(len, (void *)(uintptr_t)body,
                                                                                    release_cb, p);
    if (!r)
        svc_snapshot_release(p);
    return respond(c, code, r, ctype);
}

/* /metrics: the live part (reloads, process) then the runs' text of the
 * snapshot, streamed from both without copying the second. */
typedef struct metrics_body {
    char *live;
    size_t live_len;
    svc_snapshot_t *p;
} metrics_body_t;

static ssize_t metrics_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    metrics_body_t *b = cls;
    size_t total = b->live_len + b->p->metrics_len;
    if (pos >= total)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = 0;
    while (n < max && pos < total) {
        const char *src = pos < b->live_len ? b->live + pos : b->p->metrics + (pos - b->live_len);
        size_t left = pos < b->live_len ? b->live_len - (size_t)pos : total - (size_t)pos;
        size_t k = left < max - n ? left : max - n;
        memcpy(buf + n, src, k);
        n += k;
        pos += k;
    }
    return (ssize_t)n;
}

static void metrics_free(void *cls)
{
    metrics_body_t *b = cls;
    free(b->live);
    svc_snapshot_release(b->p);
    free(b);
}

static enum MHD_Result serve_metrics(struct MHD_Connection *c, svc_http_t *h, svc_snapshot_t *p)
{
    metrics_body_t *b = calloc(1, sizeof *b);
    if (!b || !(b->live = svc_metrics_render_live(svc_metrics_of(h->svc), &b->live_len))) {
        free(b);
        return send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, ctype_text, "out of memory\n");
    }
    __atomic_add_fetch(&p->refs, 1, __ATOMIC_ACQ_REL);
    b->p = p;
    struct MHD_Response *r = MHD_create_response_from_callback(b->live_len + p->metrics_len, 64 * 1024, metrics_read, b,
                                                               metrics_free);
    if (!r)
        metrics_free(b);
    return respond(c, MHD_HTTP_OK, r, ctype_metrics);
}

static enum MHD_Result serve_healthz(struct MHD_Connection *c, const svc_snapshot_t *p, const svc_live_t *l)
{
    uint64_t now = dp__now_ns() / 1000000u;
    if (l->running) {
        uint64_t age = now - l->run_started_mono;
        if (l->timeout_ms && age > l->timeout_ms + l->grace_ms)
            return send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, ctype_text,
                             "stuck: run %u started %.1f s ago, past its timeout of %.1f s\n", l->run,
                             (double)age / 1000.0, (double)l->timeout_ms / 1000.0);
        return send_text(c, MHD_HTTP_OK, ctype_text, "ok: run %u under way for %.1f s\n", l->run, (double)age / 1000.0);
    }
    if (p->have_run && l->next_due_mono && now > l->next_due_mono + l->grace_ms)
        return send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, ctype_text,
                         "stuck: run %u was due %.1f s ago and has not started\n", p->run + 1,
                         (double)(now - l->next_due_mono) / 1000.0);
    if (!p->have_run)
        return send_text(c, MHD_HTTP_OK, ctype_text, "ok: starting\n");
    return send_text(c, MHD_HTTP_OK, ctype_text, "ok: run %u ended %.1f s ago; the next is due in %.1f s\n", p->run,
                     (double)(dp__wall_ns() / 1000000u - p->ended_ms) / 1000.0,
                     now < l->next_due_mono ? (double)(l->next_due_mono - now) / 1000.0 : 0.0);
}

static enum MHD_Result serve_readyz(struct MHD_Connection *c, const svc_snapshot_t *p)
{
    if (!p->have_run)
        return send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, ctype_text, "not ready: no run has ended yet\n");
    if (p->outcome == DP_RUN_SUCCESS)
        return send_text(c, MHD_HTTP_OK, ctype_text, "ready: run %u succeeded\n", p->run);
    return send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, ctype_text,
                     "not ready: run %u ended %s; first job not ready: %s\n", p->run,
                     dp_run_outcome_name((dp_run_outcome_t)p->outcome), p->blocker ? p->blocker : "(none)");
}

/* The page number of ?page=N; 1 for anything else. */
static unsigned page_arg(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "page");
    unsigned page = 1;
    if (v && !cli_parse_uint(v, 1, 1000000000u, &page))
        page = 1;
    return page;
}

static enum MHD_Result route(struct MHD_Connection *c, svc_http_t *h, const char *url)
{
    svc_live_t live;
    svc_snapshot_t *p = svc_acquire(h->svc, &live);
    enum MHD_Result ret;
    if (strcmp(url, "/metrics") == 0) {
        ret = serve_metrics(c, h, p);
    } else if (strcmp(url, "/healthz") == 0) {
        ret = serve_healthz(c, p, &live);
    } else if (strcmp(url, "/readyz") == 0) {
        ret = serve_readyz(c, p);
    } else if (strcmp(url, "/api/v1/result") == 0) {
        ret = p->have_run
                  ? send_snapshot(c, MHD_HTTP_OK, ctype_json, p, p->result_json, p->result_len)
                  : send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, ctype_json, "{\"error\":\"no run has ended yet\"}\n");
    } else if (strcmp(url, "/api/v1/runs") == 0) {
        size_t len = 0;
        char *body = svc_runs_copy(h->svc, &len);
        ret = body ? send_owned(c, MHD_HTTP_OK, ctype_json, body, len)
                   : send_text(c, MHD_HTTP_NOT_FOUND, ctype_json,
                               "{\"error\":\"no run history: this watch keeps no durable state (--no-state, or "
                               "its state could not be written)\"}\n");
    } else if (strcmp(url, "/api/v1/status") == 0) {
        size_t len = 0;
        char *body = svc_status_json(p, &live, &len);
        ret = send_owned(c, MHD_HTTP_OK, ctype_json, body, len);
    } else if (strcmp(url, "/graph.svg") == 0) {
        size_t len = 0;
        const char *svg = svc_snapshot_svg(p, &len);
        ret = svg ? send_snapshot(c, MHD_HTTP_OK, "image/svg+xml", p, svg, len)
                  : send_text(c, MHD_HTTP_NOT_FOUND, ctype_text, "no graph: %s\n",
                              !p->have_run                    ? "no run has ended yet"
                              : p->njobs > SVC_GRAPH_MAX_JOBS ? "too many jobs to draw"
                                                              : "it could not be drawn");
    } else if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) {
        size_t len = 0;
        char *body = svc_status_page(p, &live, page_arg(c), &len);
        struct MHD_Response *r = body ? MHD_create_response_from_buffer_with_free_callback(len, body, free) : NULL;
        if (r)
            /* Everything the page needs is in it: nothing may be loaded
             * from elsewhere. */
            MHD_add_response_header(r, "Content-Security-Policy",
                                    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                                    "connect-src 'self'; img-src 'self' data:");
        ret = r ? respond(c, MHD_HTTP_OK, r, "text/html; charset=utf-8")
                : send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, ctype_text, "out of memory\n");
    } else {
        ret = send_text(c, MHD_HTTP_NOT_FOUND, ctype_text,
                        "not found; the endpoints are /, /metrics, /healthz, /readyz, /api/v1/result, "
                        "/api/v1/runs, /api/v1/status, /graph.svg\n");
    }
    svc_snapshot_release(p);
    return ret;
}

/* RFC 9110's token characters: what a header name is made of. */
static bool token_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Counts headers whose name is not a token (libmicrohttpd 0.9.75 lets a
 * space through in a name) or whose value is shorter than its size says
 * (a NUL; libmicrohttpd 0.9.75 itself cuts a value at a NUL, so this is
 * for the versions that hand it on). */
static enum MHD_Result header_check(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                    const char *value, size_t value_size)
{
    (void)kind;
    bool bad = !key_size || (value && strlen(value) != value_size);
    for (size_t i = 0; i < key_size && !bad; i++)
        bad = !token_char((unsigned char)key[i]);
    if (bad) {
        ++*(unsigned *)cls;
        return MHD_NO;
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    svc_http_t *h = cls;
    if (!*state) /* once a request: libmicrohttpd calls again for a body */
        console_logf(svc_console(h->svc), DP_LOG_DEBUG, "http: %s %s", method, url);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(sizeof "read-only: GET and HEAD only\n" - 1,
                                                                 (void *)"read-only: GET and HEAD only\n",
                                                                 MHD_RESPMEM_PERSISTENT);
        if (r)
            MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, r, ctype_text);
    }
    /* A GET with a body: refused, the body unread. */
    const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (*upload_size || *state || (clen && strcmp(clen, "0") != 0) ||
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        *upload_size = 0;
        *state = (void *)1;
        return send_text(c, MHD_HTTP_BAD_REQUEST, ctype_text, "a GET takes no body\n");
    }
    unsigned bad = 0;
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, header_check, &bad);
    if (bad)
        return send_text(c, MHD_HTTP_BAD_REQUEST, ctype_text,
                         "a header name that is not a token, or a NUL in a value\n");
    return route(c, h, url);
}

/* Lowers the calling thread to the lowest priority there is: SCHED_IDLE,
 * else (a kernel or sandbox that refuses it) nice 19 for this thread alone
 * (Linux's setpriority on a thread id). */
static void lowest_priority(void)
{
#ifdef __linux__
    struct sched_param sp = {.sched_priority = 0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
#endif
}

typedef struct daemon_start {
    unsigned flags;
    int fd;
    svc_http_t *h;
    struct MHD_Daemon *d;
} daemon_start_t;

static void *start_daemon(void *arg)
{
    daemon_start_t *a = arg;
    lowest_priority();
    a->d = MHD_start_daemon(a->flags, 0, NULL, NULL, on_request, a->h, MHD_OPTION_LISTEN_SOCKET, a->fd,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)HTTP_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_SECONDS,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
                            MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    return NULL;
}

svc_http_t *svc_http_start(svc_t *s, const dp__listen_addr_t *addr, unsigned *port, char *err, size_t errlen)
{
    svc_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->svc = s;
    /* The socket is bound here rather than by libmicrohttpd, so that a
     * refusal says why (address in use, not available, ...). */
    int fd = socket(addr->ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    char where[80];
    dp__listen_format(addr, addr->port, where, sizeof where);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)&addr->sa, addr->salen) != 0 || listen(fd, HTTP_BACKLOG) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s%s", where, strerror(errno),
                 errno == EADDRINUSE ? " (another process serves there: choose another port, or 0 for a free one)"
                                     : "");
        if (fd >= 0)
            close(fd);
        free(h);
        return NULL;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    *port = addr->port;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
        *port = ntohs(addr->ipv6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                 : ((struct sockaddr_in *)&bound)->sin_port);
    /* libmicrohttpd makes its threads itself, with no hook to set their
     * priority; a new thread takes its creator's, and an unprivileged
     * thread cannot raise its own again. So a short-lived thread lowers
     * itself and starts the daemon, whose threads inherit the lowest
     * priority, while this one (the loop's) keeps its own. */
    daemon_start_t a = {
        .flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | (addr->ipv6 ? MHD_USE_IPv6 : 0), .fd = fd, .h = h};
    pthread_t starter;
    int rc = pthread_create(&starter, NULL, start_daemon, &a);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the HTTP server on %s: no thread to start it (%s)", where, strerror(rc));
        close(fd);
        free(h);
        return NULL;
    }
    pthread_join(starter, NULL);
    h->d = a.d;
    if (!h->d) {
        snprintf(err, errlen, "cannot start the HTTP server on %s (libmicrohttpd refused its options)", where);
        close(fd);
        free(h);
        return NULL;
    }
    return h;
}

void svc_http_stop(svc_http_t *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    svc_graph_svg_shutdown();
    free(h);
}
