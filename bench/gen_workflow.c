/* gen_workflow.c - writes a large workflow file for the command:
 *
 *   gen_workflow [-n N] [-s SHAPE] [--seed S] [-j MAX_CONCURRENT] > big.cfg
 *
 * Every job is core.noop; the dependencies are the benchmark shape (default
 * "random": each job after up to 10 random earlier jobs, about 1 M edges at
 * the default N = 100000), from the same generator as sched_bench. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shapes.h"

int main(int argc, char **argv)
{
    uint32_t n = 100000;
    int kind = BENCH_RANDOM;
    unsigned long long seed = 42;
    unsigned jobs = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-n") == 0)
            n = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "-s") == 0)
            kind = bench_shape_parse(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "-j") == 0)
            jobs = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else
            kind = -1;
    }
    if (kind < 0 || (argc - 1) % 2) {
        fprintf(stderr, "usage: gen_workflow [-n N] [-s SHAPE] [--seed S] [-j MAX_CONCURRENT]\n");
        return 2;
    }
    bench_shape_t s;
    if (bench_shape_make(&s, (bench_shape_kind_t)kind, n, seed) != 0)
        return 1;
    printf("# %u core.noop jobs, shape %s, %zu dependencies (bench/gen_workflow)\n", s.n,
           bench_shape_name((bench_shape_kind_t)kind), s.nedges);
    printf("workflow: {\n  name = \"large-%s\";\n  max_concurrent_jobs = %u;\n};\n\njobs = (\n",
           bench_shape_name((bench_shape_kind_t)kind), jobs);
    for (uint32_t j = 0; j < s.n; j++) {
        printf("  { name = \"j%07u\"; type = \"core.noop\";", j);
        if (s.dep_off[j + 1] > s.dep_off[j]) {
            printf(" depends_on = [");
            for (uint32_t k = s.dep_off[j]; k < s.dep_off[j + 1]; k++)
                printf("%s\"j%07u\"", k > s.dep_off[j] ? ", " : " ", s.dep_ids[k]);
            printf(" ];");
        }
        printf(" }%s\n", j + 1 < s.n ? "," : "");
    }
    printf(");\n");
    bench_shape_free(&s);
    return 0;
}
