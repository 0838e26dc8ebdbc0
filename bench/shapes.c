/* shapes.c - deterministic benchmark shapes (see shapes.h). */
#include "shapes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[BENCH_NSHAPES] = {"chain", "independent", "fan", "grid", "random"};

const char *bench_shape_name(bench_shape_kind_t kind)
{
    return (unsigned)kind < BENCH_NSHAPES ? names[kind] : "?";
}

int bench_shape_parse(const char *name)
{
    for (int k = 0; k < BENCH_NSHAPES; k++)
        if (strcmp(name, names[k]) == 0)
            return k;
    return -1;
}

/* splitmix64: tiny, seedable, and identical on every platform. */
static uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define RANDOM_FANIN 10

int bench_shape_make(bench_shape_t *s, bench_shape_kind_t kind, uint32_t n, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    if (n < 3)
        n = 3;
    uint32_t side = 0;
    size_t cap;
    switch (kind) {
    case BENCH_CHAIN: cap = n - 1; break;
    case BENCH_INDEPENDENT: cap = 0; break;
    case BENCH_FAN: cap = 2 * (size_t)(n - 2); break;
    case BENCH_GRID:
        side = (uint32_t)sqrt((double)n);
        while ((uint64_t)(side + 1) * (side + 1) <= n)
            side++;
        while ((uint64_t)side * side > n)
            side--;
        n = side * side;
        cap = 2 * (size_t)side * (side - 1);
        break;
    case BENCH_RANDOM: cap = (size_t)n * RANDOM_FANIN; break;
    default: return -1;
    }
    s->n = n;
    s->dep_off = malloc(((size_t)n + 1) * sizeof *s->dep_off);
    s->dep_ids = malloc((cap ? cap : 1) * sizeof *s->dep_ids);
    if (!s->dep_off || !s->dep_ids) {
        bench_shape_free(s);
        return -1;
    }
    size_t e = 0;
    uint64_t rng = seed;
    for (uint32_t j = 0; j < n; j++) {
        s->dep_off[j] = (uint32_t)e;
        switch (kind) {
        case BENCH_CHAIN:
            if (j > 0)
                s->dep_ids[e++] = j - 1;
            break;
        case BENCH_INDEPENDENT: break;
        case BENCH_FAN:
            if (j == n - 1)
                for (uint32_t d = 1; d < n - 1; d++)
                    s->dep_ids[e++] = d;
            else if (j > 0)
                s->dep_ids[e++] = 0;
            break;
        case BENCH_GRID: {
            uint32_t r = j / side, c = j % side;
            if (r > 0)
                s->dep_ids[e++] = j - side;
            if (c > 0)
                s->dep_ids[e++] = j - 1;
            break;
        }
        case BENCH_RANDOM: {
            /* Up to RANDOM_FANIN draws from [0, j); repeats are dropped, so
             * a job has at most that many distinct dependencies. */
            size_t first = e;
            uint32_t draws = j < RANDOM_FANIN ? j : RANDOM_FANIN;
            for (uint32_t k = 0; k < draws; k++) {
                uint32_t d = (uint32_t)(next_rand(&rng) % j);
                int dup = 0;
                for (size_t q = first; q < e; q++)
                    if (s->dep_ids[q] == d)
                        dup = 1;
                if (!dup)
                    s->dep_ids[e++] = d;
            }
            break;
        }
        default: break;
        }
    }
    s->dep_off[n] = (uint32_t)e;
    s->nedges = e;
    return 0;
}

int bench_shape_succ(bench_shape_t *s)
{
    uint32_t n = s->n;
    s->succ_off = calloc((size_t)n + 1, sizeof *s->succ_off);
    s->succ_ids = malloc((s->nedges ? s->nedges : 1) * sizeof *s->succ_ids);
    uint32_t *fill = malloc(((size_t)n + 1) * sizeof *fill);
    if (!s->succ_off || !s->succ_ids || !fill) {
        free(fill);
        return -1;
    }
    for (size_t k = 0; k < s->nedges; k++)
        s->succ_off[s->dep_ids[k] + 1]++;
    for (uint32_t j = 0; j < n; j++)
        s->succ_off[j + 1] += s->succ_off[j];
    memcpy(fill, s->succ_off, ((size_t)n + 1) * sizeof *fill);
    for (uint32_t j = 0; j < n; j++)
        for (uint32_t k = s->dep_off[j]; k < s->dep_off[j + 1]; k++)
            s->succ_ids[fill[s->dep_ids[k]]++] = j;
    free(fill);
    return 0;
}

void bench_shape_free(bench_shape_t *s)
{
    free(s->dep_off);
    free(s->dep_ids);
    free(s->succ_off);
    free(s->succ_ids);
    s->dep_off = s->dep_ids = s->succ_off = s->succ_ids = NULL;
}
