/* http_server.h - the HTTP side of `watch --listen`: libmicrohttpd serving
 * the endpoints (docs/service.md) from the service's snapshots. */
#ifndef DP_CLI_HTTP_SERVER_H
#define DP_CLI_HTTP_SERVER_H

#include "listen.h"
#include "service.h"

typedef struct svc_http svc_http_t;

/* Binds addr and serves on threads of its own; *port is the port bound.
 * NULL with err set (the address in use, not available, ...). */
svc_http_t *svc_http_start(svc_t *s, const dp__listen_addr_t *addr, unsigned *port, char *err, size_t errlen);
/* Closes the listening socket and every connection, joins the threads. */
void svc_http_stop(svc_http_t *h);

#endif /* DP_CLI_HTTP_SERVER_H */
