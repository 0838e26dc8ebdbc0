// tbb_flow.cpp - the benchmark shapes on Intel oneTBB flow_graph: one
// continue_node per job, an edge per dependency, no-op bodies, a fixed number
// of threads (global_control). Speaks sched_bench's child protocol:
//
//   tbb_flow --child tbb SHAPE THREADS N RUNS SEED
//   -> RESULT n edges build_ns median_run_ns min_run_ns median_cpu_ns first_run_ns first_cpu_ns
//
// The shapes come from the same C generator (../shapes.h) as everything else.
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <sys/resource.h>

#include "shapes.h"

namespace flow = oneapi::tbb::flow;

static std::uint64_t now_ns()
{
    return (std::uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

static std::uint64_t cpu_ns()
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((std::uint64_t)ru.ru_utime.tv_sec + (std::uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((std::uint64_t)ru.ru_utime.tv_usec + (std::uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

// The same indirect no-op call the lower bound makes.
typedef void (*job_fn)(std::uint32_t id, void *user);
static void noop(std::uint32_t, void *)
{
}
static job_fn volatile job = noop;

int main(int argc, char **argv)
{
    if (argc != 8 || std::strcmp(argv[1], "--child") != 0) {
        std::fprintf(stderr, "usage: tbb_flow --child tbb SHAPE THREADS N RUNS SEED\n");
        return 2;
    }
    int kind = bench_shape_parse(argv[3]);
    unsigned threads = (unsigned)std::strtoul(argv[4], nullptr, 10);
    std::uint32_t n = (std::uint32_t)std::strtoul(argv[5], nullptr, 10);
    unsigned runs = (unsigned)std::strtoul(argv[6], nullptr, 10);
    std::uint64_t seed = std::strtoull(argv[7], nullptr, 10);
    if (kind < 0 || threads < 1 || runs < 1) {
        std::fprintf(stderr, "tbb_flow: bad arguments\n");
        return 2;
    }
    oneapi::tbb::global_control gc(oneapi::tbb::global_control::max_allowed_parallelism, threads);

    bench_shape_t s;
    if (bench_shape_make(&s, (bench_shape_kind_t)kind, n, seed) != 0)
        return 1;
    std::uint32_t njobs = s.n;
    std::size_t nedges = s.nedges;

    std::uint64_t t0 = now_ns();
    flow::graph g;
    typedef flow::continue_node<flow::continue_msg> node_t;
    std::vector<std::unique_ptr<node_t>> nodes;
    nodes.reserve(njobs);
    std::vector<std::uint32_t> roots;
    for (std::uint32_t j = 0; j < njobs; j++) {
        nodes.emplace_back(new node_t(g, [j](const flow::continue_msg &) {
            job(j, nullptr);
            return flow::continue_msg();
        }));
        if (s.dep_off[j] == s.dep_off[j + 1])
            roots.push_back(j);
    }
    for (std::uint32_t j = 0; j < njobs; j++)
        for (std::uint32_t k = s.dep_off[j]; k < s.dep_off[j + 1]; k++)
            flow::make_edge(*nodes[s.dep_ids[k]], *nodes[j]);
    std::uint64_t build_ns = now_ns() - t0;
    bench_shape_free(&s);

    std::vector<std::uint64_t> t, c;
    std::uint64_t first = 0, first_cpu = 0;
    for (unsigned r = 0; r <= runs; r++) {
        std::uint64_t c0 = cpu_ns();
        t0 = now_ns();
        for (std::uint32_t root : roots)
            nodes[root]->try_put(flow::continue_msg());
        g.wait_for_all();
        std::uint64_t dt = now_ns() - t0;
        std::uint64_t dc = cpu_ns() - c0;
        if (r) {
            t.push_back(dt);
            c.push_back(dc);
        } else {
            first = dt;
            first_cpu = dc;
        }
    }
    auto median = [](std::vector<std::uint64_t> &v) {
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    };
    std::uint64_t med = median(t), cmed = median(c);
    std::printf("RESULT %u %zu %llu %llu %llu %llu %llu %llu\n", njobs, nedges, (unsigned long long)build_ns,
                (unsigned long long)med, (unsigned long long)t[0], (unsigned long long)cmed, (unsigned long long)first,
                (unsigned long long)first_cpu);
    return 0;
}
