/*
 * main.c - the daggerpool command: dispatches to one subcommand per file.
 * Adding a subcommand means one row in `commands` and one
 * file beside this one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "daggerpool/plugin.h"

static const struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"run", cli_run, "run a workflow once and report (summary, --json, --trace)"},
    {"validate", cli_validate, "check a workflow, its plugins and params without running it"},
    {"plan", cli_plan, "say what run would run (waves), reuse or leave out, without running anything"},
    {"graph", cli_graph, "print a workflow's DAG as Graphviz DOT or Mermaid"},
    {"plugins", cli_plugins, "list the plugins on the search path"},
    {"watch", cli_watch, "run a workflow again and again until ready (reconcile loop; hot reload)"},
    {"history", cli_history, "list the runs recorded in a workflow's state"},
    {"show", cli_show, "show a recorded run: its summary, or its JSON result as run --json wrote it"},
    {"mark", cli_mark, "mark a job succeeded (or clear it) for the next run --resume"},
};

static void print_usage(FILE *out)
{
    fputs("usage: daggerpool COMMAND [options]\n       daggerpool --help | --version\n\ncommands:\n", out);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'daggerpool COMMAND --help' describes a command; man daggerpool has the whole story.\n"
          "exit codes: 0 success, 1 failed, 2 invalid input (nothing ran), 3 not ready, 4 timeout, 130 interrupted\n",
          out);
}

/* Whatever a command printed must have reached stdout: `daggerpool validate
 * FILE > /dev/full` must not exit 0 as if the report had been read. A
 * command that already failed keeps its code (and has said why). */
static int stdout_written(int code)
{
    errno = 0;
    if ((fflush(stdout) != 0 || ferror(stdout)) && code == CLI_EXIT_SUCCESS) {
        cli_errorf(NULL, "cannot write to standard output: %s", strerror(errno ? errno : EIO));
        return CLI_EXIT_FAILED;
    }
    return code;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return CLI_EXIT_INVALID;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        if (strcmp(cmd, "help") == 0 && argc > 2) {
            /* `daggerpool help run` is `daggerpool run --help`. */
            char *args[] = {argv[2], "--help", NULL};
            for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (strcmp(argv[2], commands[i].name) == 0)
                    return stdout_written(commands[i].fn(2, args));
            return cli_usage_error(NULL, "unknown command '%s'", argv[2]);
        }
        print_usage(stdout);
        return stdout_written(CLI_EXIT_SUCCESS);
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("daggerpool %s (plugin ABI %d.%d)\n", dp_version(), DP_PLUGIN_ABI_MAJOR, DP_PLUGIN_ABI_MINOR);
        return stdout_written(CLI_EXIT_SUCCESS);
    }
    /* The library reads it when it loads and cannot complain; the command
     * can, before it does anything. */
    const char *clock = getenv("DAGGERPOOL_CLOCK");
    if (clock && *clock && strcmp(clock, "monotonic") != 0)
        return cli_usage_error(NULL,
                               "DAGGERPOOL_CLOCK='%s' is not known: set it to 'monotonic' (stamp jobs "
                               "with CLOCK_MONOTONIC) or unset it (the CPU's counter where it is "
                               "invariant)",
                               clock);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return stdout_written(commands[i].fn(argc - 1, argv + 1));
    return cli_usage_error(NULL, "unknown command '%s'", cmd);
}
