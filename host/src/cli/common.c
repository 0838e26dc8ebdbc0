/* common.c - what the subcommands share: usage errors, the plugin search
 * path, output files written whole. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "plugin.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "daggerpool%s%s: %s; try 'daggerpool%s%s --help'\n", cmd ? " " : "", cmd ? cmd : "", msg,
            cmd ? " " : "", cmd ? cmd : "");
    return CLI_EXIT_INVALID;
}

bool cli_parse_uint(const char *text, unsigned min, unsigned max, unsigned *out)
{
    if (!text || !*text || *text == '-' || *text == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

bool cli_list_push(char ***list, size_t *n, char *item)
{
    char **grown = realloc(*list, (*n + 1) * sizeof *grown);
    if (!grown)
        return false;
    grown[(*n)++] = item;
    *list = grown;
    return true;
}

bool cli_check_dirs(const char *cmd, char **dirs, size_t ndirs)
{
    for (size_t i = 0; i < ndirs; i++) {
        struct stat st;
        if (stat(dirs[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            cli_usage_error(cmd, "--plugin-path %s: %s", dirs[i],
                            errno == ENOENT || errno == 0 ? "no such directory" : strerror(errno));
            return false;
        }
    }
    return true;
}

void cli_plugin_search_path(dp_plugins_t *pl, const dp_workflow_t *wf, char **dirs, size_t ndirs)
{
    const char *dir;
    for (size_t i = 0; wf && (dir = dp_workflow_plugin_path(wf, i)); i++)
        dp_plugins_add_path(pl, dir);
    for (size_t i = 0; i < ndirs; i++)
        dp_plugins_add_path(pl, dirs[i]);
    const char *env = getenv("DAGGERPOOL_PLUGIN_PATH");
    if (env && *env)
        dp__plugins_add_path_list(pl, env);
    char def[PATH_MAX];
    if (dp__plugins_default_dir(def, sizeof def) == DP_OK)
        dp_plugins_add_path(pl, def);
}

bool out_file_open(out_file_t *o, const char *path, const char *cmd, const char *what)
{
    memset(o, 0, sizeof *o);
    o->path = path;
    if (strcmp(path, "-") == 0) {
        o->f = stdout;
        return true;
    }
    char *tmp = malloc(strlen(path) + 32);
    if (!tmp)
        return false;
    sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
    o->f = fopen(tmp, "w");
    if (!o->f) {
        fprintf(stderr, "daggerpool %s: cannot write the %s to %s: %s\n", cmd, what, path, strerror(errno));
        free(tmp);
        return false;
    }
    o->tmp = tmp;
    return true;
}

bool out_file_commit(out_file_t *o, const char *cmd)
{
    if (o->f == stdout) {
        o->f = NULL;
        return fflush(stdout) == 0;
    }
    bool ok = o->f && fflush(o->f) == 0 && !ferror(o->f);
    if (o->f && fclose(o->f) != 0)
        ok = false;
    o->f = NULL;
    if (ok && rename(o->tmp, o->path) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "daggerpool %s: cannot write %s: %s\n", cmd, o->path, strerror(errno));
        unlink(o->tmp);
    }
    free(o->tmp);
    o->tmp = NULL;
    return ok;
}

void out_file_discard(out_file_t *o)
{
    if (o->f && o->f != stdout)
        fclose(o->f);
    if (o->tmp) {
        unlink(o->tmp);
        free(o->tmp);
    }
    o->f = NULL;
    o->tmp = NULL;
}
