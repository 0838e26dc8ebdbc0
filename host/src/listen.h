/* listen.h - the address `daggerpool watch --listen` (and the workflow's
 * workflow.listen) names: "PORT", ":PORT", "HOST:PORT" or "[IPV6]:PORT".
 * Loopback unless another address is written out: "9100" and ":9100" are
 * 127.0.0.1:9100. Read here, in the library, so that the workflow file's
 * key is checked with the file's other keys (FILE:LINE), before anything
 * runs. Private to libdaggerpool; the command is the user. */
#ifndef DP_LISTEN_H
#define DP_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct dp__listen_addr {
    struct sockaddr_storage sa; /* the address to bind, port included */
    socklen_t salen;
    bool ipv6;
    bool loopback; /* 127.0.0.0/8 or ::1 */
    unsigned port; /* 0: the kernel picks a free one */
} dp__listen_addr_t;

/* Parses text. DP_OK, or DP_EINVAL with err saying what was found, what was
 * expected and the fix (no file name: the caller adds where it came from).
 * Host names other than "localhost" are refused: the address is bound as
 * written, never looked up. */
int dp__listen_parse(const char *text, dp__listen_addr_t *out, char *err, size_t errlen);

/* "127.0.0.1:9100" or "[::1]:9100" (the port bound, which may differ from
 * a.port when that was 0) into buf. */
void dp__listen_format(const dp__listen_addr_t *a, unsigned port, char *buf, size_t len);

#endif /* DP_LISTEN_H */
