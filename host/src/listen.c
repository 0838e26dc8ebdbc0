/* listen.c - the address of `watch --listen` and workflow.listen (listen.h). */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daggerpool/daggerpool.h"

static const char listen_fix[] = "write PORT (loopback), :PORT, 127.0.0.1:PORT, [::1]:PORT, or another "
                                 "address written out such as 0.0.0.0:PORT to serve beyond this machine";

/* The port: digits only, 0 to 65535. */
static bool parse_port(const char *s, unsigned *port)
{
    if (!*s || strlen(s) > 5)
        return false;
    unsigned v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > 65535)
        return false;
    *port = v;
    return true;
}

int dp__listen_parse(const char *text, dp__listen_addr_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!text || !*text) {
        snprintf(err, errlen, "an empty listen address; %s", listen_fix);
        return DP_EINVAL;
    }
    char host[64] = "";
    const char *port_text;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host) {
            snprintf(err, errlen, "listen address '%s': an IPv6 address needs its port after ']:'; %s", text,
                     listen_fix);
            return DP_EINVAL;
        }
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port_text = close + 2;
        out->ipv6 = true;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon && strchr(text, ':') != colon) {
            snprintf(err, errlen, "listen address '%s': an IPv6 address goes in brackets, as [::1]:9100; %s", text,
                     listen_fix);
            return DP_EINVAL;
        }
        if (colon) {
            if ((size_t)(colon - text) >= sizeof host) {
                snprintf(err, errlen, "listen address '%s': the host part is too long; %s", text, listen_fix);
                return DP_EINVAL;
            }
            memcpy(host, text, (size_t)(colon - text));
            host[colon - text] = '\0';
            port_text = colon + 1;
        } else {
            port_text = text;
        }
    }
    if (!parse_port(port_text, &out->port)) {
        snprintf(err, errlen, "listen address '%s': '%s' is not a port (0 to 65535; 0 picks a free one); %s", text,
                 port_text, listen_fix);
        return DP_EINVAL;
    }
    if (!*host || strcmp(host, "localhost") == 0)
        strcpy(host, out->ipv6 ? "::1" : "127.0.0.1");
    if (out->ipv6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->sa;
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
            snprintf(err, errlen, "listen address '%s': '%s' is not an IPv6 address; %s", text, host, listen_fix);
            return DP_EINVAL;
        }
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)out->port);
        out->salen = sizeof *s6;
        out->loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->sa;
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
            snprintf(err, errlen,
                     "listen address '%s': '%s' is not an IPv4 address (host names are not looked up, "
                     "bar localhost); %s",
                     text, host, listen_fix);
            return DP_EINVAL;
        }
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)out->port);
        out->salen = sizeof *s4;
        out->loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    return DP_OK;
}

void dp__listen_format(const dp__listen_addr_t *a, unsigned port, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (a->ipv6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->sa)->sin6_addr, host, sizeof host);
    else
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->sa)->sin_addr, host, sizeof host);
    snprintf(buf, len, a->ipv6 ? "[%s]:%u" : "%s:%u", host, port);
}
