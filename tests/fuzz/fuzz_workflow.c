/* fuzz_workflow.c - the workflow loader on any bytes: libconfig parsing,
 * every key, type and duration check, duplicate names, unknown
 * dependencies, cycles; plugins are never loaded or run. What loads is then
 * drawn as DOT and Mermaid (names may hold any bytes).
 *
 * The bytes are handed over as a file (a memfd, read through /proc/self/fd)
 * since dp_workflow_load takes a path. Inputs that mention "include" are
 * skipped: @include would let the input read arbitrary files (/dev/zero).
 *
 * Invariants: a refusal leaves a non-empty, NUL-terminated message; a
 * loaded workflow has a name, a shape with one typed job per job, and
 * finite plugin_path and dependency lists. */
#include <ctype.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "daggerpool/daggerpool.h"
#include "fuzz.h"
#include "render.h"

static FILE *devnull;

static bool mentions_include(const uint8_t *data, size_t size)
{
    static const char word[] = "include";
    for (size_t i = 0; i + 7 <= size; i++) {
        size_t k = 0;
        while (k < 7 && tolower(data[i + k]) == word[k])
            k++;
        if (k == 7)
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536 || mentions_include(data, size))
        return 0;
    if (!devnull && !(devnull = fopen("/dev/null", "w")))
        return 0;
    int fd = memfd_create("fuzz_workflow.cfg", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0) {
            close(fd);
            return 0;
        }
        off += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    char err[4096];
    memset(err, 'x', sizeof err);
    dp_workflow_t *wf = dp_workflow_load(path, err, sizeof err);
    if (!wf) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
        FUZZ_CHECK(err[0] != '\0');
        close(fd);
        return 0;
    }
    FUZZ_CHECK(dp_workflow_name(wf) != NULL);
    size_t np = 0;
    while (dp_workflow_plugin_path(wf, np))
        FUZZ_CHECK(++np < 100000);

    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    dp_workflow_run_opts(wf, &opts);
    FUZZ_CHECK(opts.max_concurrent_jobs >= 1);

    const dp_graph_t *shape = dp__workflow_shape(wf);
    FUZZ_CHECK(shape != NULL);
    size_t n = dp_graph_job_count(shape);
    const char **types = calloc(n ? n : 1, sizeof(*types));
    for (size_t i = 0; types && i < n; i++) {
        const char *name = dp_graph_job_name(shape, i);
        FUZZ_CHECK(name && *name);
        FUZZ_CHECK(dp_graph_job_id(shape, name) == (long)i);
        types[i] = dp__workflow_job_type(wf, name);
        FUZZ_CHECK(types[i] && strchr(types[i], '.'));
        const uint32_t *ids;
        size_t nd = dp_graph_deps(shape, i, &ids);
        for (size_t k = 0; k < nd; k++)
            FUZZ_CHECK(ids[k] < n && ids[k] != i);
    }
    if (types) {
        dp__graph_style_t style = {.types = types, .status = NULL};
        dp__render_dot(devnull, shape, dp_workflow_name(wf), &style);
        dp__render_mermaid(devnull, shape, &style);
        free(types);
    }
    dp_workflow_free(wf);
    close(fd);
    return 0;
}
