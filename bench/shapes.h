/* shapes.h - the benchmark shapes, generated deterministically.
 *
 * Shared by the library benchmark (sched_bench.c), the lower bound (inside
 * sched_bench.c) and the peers (peers/ (C++)), so that every system runs the
 * very same graphs. Plain C, usable from C++.
 *
 * Every shape numbers its jobs 0..n-1 in a topological order: a job's
 * dependencies all have smaller ids.
 */
#ifndef DP_BENCH_SHAPES_H
#define DP_BENCH_SHAPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bench_shape_kind {
    BENCH_CHAIN,       /* j after j-1 */
    BENCH_INDEPENDENT, /* no edges */
    BENCH_FAN,         /* 0 -> 1..n-2 -> n-1 */
    BENCH_GRID,        /* side x side wavefront, side = floor(sqrt(n)) */
    BENCH_RANDOM,      /* each job after up to 10 random earlier jobs */
    BENCH_NSHAPES
} bench_shape_kind_t;

/* A generated shape in compressed sparse row form, both directions. */
typedef struct bench_shape {
    bench_shape_kind_t kind;
    uint32_t n; /* jobs (the grid rounds down to side * side) */
    size_t nedges;
    uint32_t *dep_off; /* dependencies of j: dep_ids[dep_off[j] .. dep_off[j+1]) */
    uint32_t *dep_ids;
    uint32_t *succ_off; /* successors, same layout; NULL until bench_shape_succ() */
    uint32_t *succ_ids;
} bench_shape_t;

/* "chain", "independent", "fan", "grid", "random". */
const char *bench_shape_name(bench_shape_kind_t kind);
/* The kind named `name`, or -1. */
int bench_shape_parse(const char *name);

/* Generates shape `kind` with about n jobs (n >= 3); the random shape draws
 * from a PRNG seeded with `seed`, so equal arguments give equal graphs.
 * Returns 0, or -1 when memory ran out. Free with bench_shape_free(). */
int bench_shape_make(bench_shape_t *s, bench_shape_kind_t kind, uint32_t n, uint64_t seed);
/* Fills succ_off/succ_ids (the transpose). 0 or -1 (out of memory). */
int bench_shape_succ(bench_shape_t *s);
/* Frees the arrays (the struct itself is the caller's). */
void bench_shape_free(bench_shape_t *s);

#ifdef __cplusplus
}
#endif

#endif
