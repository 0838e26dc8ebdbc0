/* leak_probe - what the libFuzzer runs' leak suppressions (lsan.supp,
 * lsan-nosymbolizer.supp) must hide and must not hide. Built with the fuzz
 * targets (clang, ASan) and run by leak-test.sh under fuzz.sh's sanitizer
 * environment (sanitizer-env.sh):
 *   leak_probe libconfig   the known libconfig 1.5 leak (a string token
 *                          dropped on a syntax error): must pass
 *   leak_probe ours        a block this program allocates and loses: must be
 *                          reported
 *   leak_probe nodestroy   a parsed config never config_destroy'ed: must be
 *                          reported when a symbolizer names the frames */
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile keep;

__attribute__((noinline)) static int lose_a_block(void)
{
    keep = malloc(64);
    memset(keep, 1, 64);
    keep = NULL;
    return 0;
}

/* Parses a config and forgets it: its settings leak. */
__attribute__((noinline)) static int parse_without_destroy(void)
{
    config_t cfg;
    config_init(&cfg);
    if (config_read_string(&cfg, "a = 1; b = \"text\"; g = { c = [1, 2]; };") != CONFIG_TRUE) {
        fprintf(stderr, "leak_probe: %s\n", config_error_text(&cfg));
        return 2;
    }
    return 0;
}

__attribute__((noinline)) static int libconfig_leak(void)
{
    config_t cfg;
    config_init(&cfg);
    int rc = config_read_string(&cfg, "\"\"");
    config_destroy(&cfg);
    if (rc != CONFIG_FALSE) {
        fprintf(stderr, "leak_probe: libconfig accepted '\"\"'\n");
        return 2;
    }
    return 0;
}

/* Stale copies of the lost pointers on the stack would make LeakSanitizer
 * count the blocks as reachable. */
__attribute__((noinline)) static void scrub_stack(void)
{
    volatile char junk[64 * 1024];
    memset((char *)junk, 0, sizeof junk);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    int rc;
    if (strcmp(what, "libconfig") == 0) {
        rc = libconfig_leak();
    } else if (strcmp(what, "ours") == 0) {
        rc = lose_a_block();
    } else if (strcmp(what, "nodestroy") == 0) {
        rc = parse_without_destroy();
    } else {
        fprintf(stderr, "usage: leak_probe libconfig|ours|nodestroy\n");
        return 2;
    }
    scrub_stack();
    return rc;
}
