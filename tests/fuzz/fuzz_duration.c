/* fuzz_duration.c - dp_duration_parse on any bytes.
 *
 * Invariants: the parser never reads past the text, always leaves a
 * NUL-terminated message on failure (whatever the buffer size), and what it
 * accepts formats to a text that parses back to the same value. */
#include <string.h>

#include "daggerpool/daggerpool.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    uint64_t ms = 0;
    char err[256];
    memset(err, 'x', sizeof err);
    int rc = dp_duration_parse(text, &ms, err, sizeof err);
    if (rc == DP_OK) {
        char buf[64], err2[256];
        dp_duration_format(ms, buf, sizeof buf);
        uint64_t back = 0;
        int rc2 = dp_duration_parse(buf, &back, err2, sizeof err2);
        if (rc2 != DP_OK || back != ms)
            fprintf(stderr, "round trip: \"%s\" -> %llu -> \"%s\" -> %s\n", text, (unsigned long long)ms, buf,
                    rc2 == DP_OK ? "other value" : err2);
        FUZZ_CHECK(rc2 == DP_OK && back == ms);
    } else {
        FUZZ_CHECK(rc == DP_EINVAL);
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
        FUZZ_CHECK(err[0] != '\0');
    }
    /* Tiny message buffers are truncated, never overrun. */
    char tiny[3] = {'x', 'x', 'x'};
    uint64_t ms2 = 0;
    int rc3 = dp_duration_parse(text, &ms2, tiny, 2);
    FUZZ_CHECK(rc3 == rc);
    FUZZ_CHECK(rc3 != DP_OK || ms2 == ms);
    FUZZ_CHECK(rc3 == DP_OK || tiny[1] == '\0');
    FUZZ_CHECK(tiny[2] == 'x');
    /* No message buffer at all. */
    FUZZ_CHECK(dp_duration_parse(text, &ms2, NULL, 0) == rc);
    free(text);
    return 0;
}
