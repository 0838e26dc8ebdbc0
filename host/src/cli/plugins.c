/*
 * plugins.c - `daggerpool plugins`: every plugin on the search path, each
 * probed in isolation (nothing registered), with its file, name, version,
 * ABI and job types; a plugin that is refused is listed with the reason.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: daggerpool plugins [options]\n"
    "\n"
    "Lists the plugins on the search path: --plugin-path directories, then DAGGERPOOL_PLUGIN_PATH\n"
    "(colon-separated), then lib/daggerpool/plugins beside the command's bin/.\n"
    "\n"
    "options:\n"
    "  --plugin-path DIR    search DIR first (repeatable)\n"
    "  -h, --help           this help\n";

typedef struct listing {
    size_t ok, broken;
} listing_t;

/* s as the summary writes names: the plugin's own strings (name, version,
 * description, types) and file names may hold any bytes. */
static void put_esc(const char *s)
{
    char *e = dp__text_escape(s ? s : "?");
    fputs(e ? e : "?", stdout);
    free(e);
}

static int print_plugin(const dp_plugin_info_t *info, void *arg)
{
    listing_t *l = arg;
    if (info->error) {
        l->broken++;
        put_esc(info->name);
        fputs("  (refused)\n    file: ", stdout);
        put_esc(info->path);
        fputs("\n    error: ", stdout);
        put_esc(info->error);
        fputc('\n', stdout);
        return 0;
    }
    l->ok++;
    put_esc(info->name);
    fputc(' ', stdout);
    put_esc(info->version);
    printf("  (ABI %u.%u)\n    file: ", info->abi_major, info->abi_minor);
    put_esc(info->path);
    fputc('\n', stdout);
    if (info->description && *info->description) {
        fputs("    ", stdout);
        put_esc(info->description);
        fputc('\n', stdout);
    }
    fputs("    types:", stdout);
    for (size_t i = 0; info->types && info->types[i]; i++) {
        /* Types are written PLUGIN.TYPE in workflows; show them that way. */
        fputs(i ? ", " : " ", stdout);
        if (!strchr(info->types[i], '.')) {
            put_esc(info->name);
            fputc('.', stdout);
        }
        put_esc(info->types[i]);
    }
    fputc('\n', stdout);
    return 0;
}

int cli_plugins(int argc, char **argv)
{
    enum { OPT_PLUGIN_PATH = 256 };
    static const struct option longopts[] = {
        {"plugin-path", required_argument, NULL, OPT_PLUGIN_PATH},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char **dirs = NULL;
    size_t ndirs = 0;
    int c;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_PLUGIN_PATH:
            if (!cli_list_push(&dirs, &ndirs, optarg)) {
                free(dirs);
                return cli_usage_error("plugins", "out of memory");
            }
            break;
        case 'h':
            fputs(usage, stdout);
            free(dirs);
            return CLI_EXIT_SUCCESS;
        case ':': free(dirs); return cli_usage_error("plugins", "%s needs a value", argv[optind - 1]);
        default: free(dirs); return cli_usage_error("plugins", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        int rc = cli_usage_error("plugins", "unexpected argument '%s'", argv[optind]);
        free(dirs);
        return rc;
    }
    if (!cli_check_dirs("plugins", dirs, ndirs)) {
        free(dirs);
        return CLI_EXIT_INVALID;
    }
    dp_plugins_t *pl = dp_plugins_new();
    if (!pl) {
        free(dirs);
        cli_errorf("plugins", "out of memory");
        return CLI_EXIT_INVALID;
    }
    cli_plugin_search_path(pl, NULL, dirs, ndirs);
    listing_t l = {0};
    int rc = dp_plugins_scan(pl, print_plugin, &l);
    int code = CLI_EXIT_SUCCESS;
    if (rc != DP_OK) {
        cli_errorf("plugins", "cannot scan the search path: %s", dp_strerror(rc));
        code = CLI_EXIT_FAILED;
    } else if (l.ok + l.broken == 0) {
        cli_errorf("plugins", "no plugins found on the search path");
    }
    dp_plugins_free(pl);
    free(dirs);
    return code;
}
