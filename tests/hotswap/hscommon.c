/* hscommon.c - see hscommon.h. */
#include "hscommon.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t hs_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_reload(void *user, const dp_reload_event_t *ev)
{
    hs_fix_t *f = user;
    pthread_mutex_lock(&f->mu);
    if (f->nevents < HS_MAX_EVENTS) {
        hs_event_t *e = &f->events[f->nevents++];
        memset(e, 0, sizeof(*e));
        e->status = ev->status;
        snprintf(e->new_version, sizeof(e->new_version), "%s", ev->new_version ? ev->new_version : "");
        snprintf(e->error, sizeof(e->error), "%s", ev->error ? ev->error : "");
        e->in_flight = ev->in_flight;
        e->complete_ns = ev->complete_ns;
        e->swapped_ns = ev->swapped_ns;
    }
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

const char *hs_variant(const char *variant)
{
    static __thread char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s/%s/hs.so", HS_DIR, variant);
    return buf;
}

static void die(const char *what)
{
    perror(what);
    abort();
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        die(path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    if (!buf || fread(buf, 1, (size_t)n, fp) != (size_t)n)
        die(path);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

void hs_install_rename(hs_fix_t *f, const char *variant)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s/.hs.so.new", f->dir);
    ptest_copy(hs_variant(variant), tmp);
    f->renamed_ns = hs_mono_ns();
    if (rename(tmp, f->path) != 0)
        die("rename");
}

void hs_overwrite(hs_fix_t *f, const char *variant, int chunks, unsigned pause_ms)
{
    size_t len;
    char *buf = slurp(hs_variant(variant), &len);
    int fd = open(f->path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        die("open");
    size_t step = (len + (size_t)chunks - 1) / (size_t)chunks;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        if (write(fd, buf + off, n) != (ssize_t)n)
            die("write");
        if (off + n < len && pause_ms)
            usleep(pause_ms * 1000u);
    }
    close(fd);
    free(buf);
}

void hs_install_garbage(hs_fix_t *f)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s/.hs.so.new", f->dir);
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        die(tmp);
    fputs("this is not a shared object, just a half-written text file\n", fp);
    fclose(fp);
    if (rename(tmp, f->path) != 0)
        die("rename");
}

hs_fix_t *hs_fix_new(uint64_t settle_ms)
{
    hs_fix_t *f = calloc(1, sizeof(*f));
    f->dir = ptest_tmpdir();
    snprintf(f->path, sizeof(f->path), "%s/hs.so", f->dir);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    ptest_log_init(&f->log);
    hs_install_rename(f, "v1");
    f->pl = dp_plugins_new();
    f->store = dp_store_new();
    dp_plugins_set_log(f->pl, ptest_log_cb, &f->log, DP_LOG_DEBUG);
    dp_plugins_set_store(f->pl, f->store);
    char err[2048];
    if (dp_plugins_load(f->pl, "hs", f->path, err, sizeof(err)) != DP_OK) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    dp_reloader_opts_t o;
    dp_reloader_opts_init(&o);
    if (settle_ms)
        o.settle_ms = settle_ms;
    o.on_reload = on_reload;
    o.user = f;
    f->rl = dp_reloader_new(f->pl, &o, err, sizeof(err));
    if (!f->rl) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    return f;
}

void hs_fix_free(hs_fix_t *f)
{
    dp_reloader_free(f->rl);
    dp_plugins_free(f->pl);
    dp_store_free(f->store);
    ptest_log_free(&f->log);
    ptest_rmrf(f->dir);
    free(f->dir);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

bool hs_wait_events(hs_fix_t *f, size_t n, uint64_t timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)(timeout_ms / 1000);
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->mu);
    while (f->nevents < n)
        if (pthread_cond_timedwait(&f->cv, &f->mu, &dl) != 0)
            break;
    bool ok = f->nevents >= n;
    pthread_mutex_unlock(&f->mu);
    return ok;
}

size_t hs_nevents(hs_fix_t *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->nevents;
    pthread_mutex_unlock(&f->mu);
    return n;
}

hs_event_t hs_event(hs_fix_t *f, size_t i)
{
    pthread_mutex_lock(&f->mu);
    hs_event_t e = f->events[i];
    pthread_mutex_unlock(&f->mu);
    return e;
}

dp_graph_t *hs_graph(hs_fix_t *f, size_t n, const char *type, uint64_t ms)
{
    dp_graph_t *g = dp_graph_new();
    dp_params_t *p = dp_params_new();
    if (ms && strcmp(type, "hs.work") == 0)
        dp_params_set_int(p, "ms", (int64_t)ms);
    for (size_t i = 0; i < n; i++) {
        char name[32], err[2048];
        snprintf(name, sizeof(name), "J%zu", i);
        dp_job_spec_t spec;
        dp_job_spec_init(&spec);
        spec.name = name;
        if (dp_plugins_add_job(f->pl, g, &spec, type, p, err, sizeof(err)) != DP_OK) {
            fprintf(stderr, "%s\n", err);
            abort();
        }
    }
    dp_params_free(p);
    return g;
}

dp_result_t *hs_run(hs_fix_t *f, dp_graph_t *g, unsigned jobs)
{
    dp_run_opts_t opts;
    dp_run_opts_init(&opts);
    opts.store = f->store;
    opts.max_concurrent_jobs = jobs;
    opts.timeout_ms = 60000;
    char err[1024];
    dp_result_t *r = dp_graph_run(g, &opts, err, sizeof(err));
    if (!r) {
        fprintf(stderr, "run: %s\n", err);
        abort();
    }
    return r;
}

struct cur_arg {
    char *buf;
    size_t len;
    unsigned n;
};

static int cur_cb(const dp_plugin_info_t *info, void *arg)
{
    struct cur_arg *a = arg;
    a->n++;
    if (info->current && a->buf)
        snprintf(a->buf, a->len, "%s", info->version);
    return 0;
}

const char *hs_current(hs_fix_t *f, char *buf, size_t len)
{
    struct cur_arg a = {buf, len, 0};
    buf[0] = '\0';
    dp_plugins_foreach(f->pl, cur_cb, &a);
    return buf;
}

unsigned hs_nversions(hs_fix_t *f)
{
    struct cur_arg a = {NULL, 0, 0};
    dp_plugins_foreach(f->pl, cur_cb, &a);
    return a.n;
}

unsigned hs_count_maps(const char *needle)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    if (!fp)
        return 0;
    unsigned n = 0;
    char line[4096];
    while (fgets(line, sizeof(line), fp)) {
        /* The path, if any, starts at the sixth field. */
        const char *p = line;
        for (int field = 0; field < 5 && p; field++) {
            p = strchr(p, ' ');
            if (p)
                p += strspn(p, " ");
        }
        bool file = p && *p == '/';
        bool plugin = p && (strstr(p, "daggerpool-plugin") || strstr(p, "/daggerpool-"));
        if (!needle || (strcmp(needle, "file") == 0 && (file || plugin)) || (strcmp(needle, "plugin") == 0 && plugin))
            n++;
    }
    fclose(fp);
    return n;
}

unsigned hs_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    unsigned n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

void *hs_runner_main(void *arg)
{
    hs_runner_t *rn = arg;
    for (;;) {
        pthread_mutex_lock(&rn->f->mu);
        int stop = rn->stop;
        pthread_mutex_unlock(&rn->f->mu);
        if (stop)
            break;
        dp_result_t *r = hs_run(rn->f, rn->g, 4);
        rn->runs++;
        for (size_t i = 0; i < dp_result_job_count(r); i++) {
            const dp_job_result_t *j = dp_result_job(r, i);
            rn->jobs++;
            if (j->status != DP_STATUS_SUCCESS) {
                if (rn->failed++ < 3)
                    printf("failed: %s: %s\n", j->name, j->error ? j->error : "(no message)");
            } else if (j->plugin_version && (j->plugin_version[0] == '1' || j->plugin_version[0] == '2')) {
                rn->on[j->plugin_version[0] - '0']++;
            }
        }
        dp_result_free(r);
    }
    return NULL;
}
