/* hash.h - the one string hash of libdaggerpool: 64-bit FNV-1a, for the
 * hash tables of the workflow's job names (config_names.c) and the store
 * (store.c). Small and good enough for names; no table here is exposed to
 * keys chosen to collide beyond what the file's author can already do to
 * their own workflow. Private to libdaggerpool. */
#ifndef DP_HASH_H
#define DP_HASH_H

#include <stddef.h>
#include <stdint.h>

#define DP__FNV1A_OFFSET 1469598103934665603ull
#define DP__FNV1A_PRIME 1099511628211ull

/* FNV-1a of n bytes at p. */
static inline uint64_t dp__hash_fnv1a_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = DP__FNV1A_OFFSET;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= DP__FNV1A_PRIME;
    }
    return h;
}

/* FNV-1a of the NUL-terminated string s (its bytes, not the NUL). */
static inline uint64_t dp__hash_fnv1a(const char *s)
{
    uint64_t h = DP__FNV1A_OFFSET;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= DP__FNV1A_PRIME;
    }
    return h;
}

#endif /* DP_HASH_H */
