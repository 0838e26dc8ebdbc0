/* record.c - the slot buffer of a run: taken from the graph at the start,
 * its sparse arrays mapped, given back to the graph when the result that
 * took it is freed (record.h). */
#include "record.h"

#include <stdlib.h>
#include <sys/mman.h>

/* Below this size the sparse arrays are plain zeroed memory: a mapping is
 * worth its system calls only when many pages may stay untouched. */
#define COLD_MAP_MIN (64 * 1024)

dp_slotbuf_t *dp__slotbuf_take(dp_graph_t *g)
{
    size_t n = g->njobs;
    dp_slotbuf_t *sb = atomic_exchange(&g->spare_slots, NULL);
    if (sb && sb->n != n) {
        free(sb);
        sb = NULL;
    }
    if (!sb) {
        sb = malloc(sizeof *sb + (n ? n : 1) * sizeof sb->slot[0]);
        if (!sb)
            return NULL;
        sb->n = n;
        sb->cold = NULL;
    }
    return sb;
}

int dp__slotbuf_cold_init(dp_slotbuf_t *sb)
{
    size_t n = sb->n ? sb->n : 1;
    size_t size = n * (sizeof *sb->error + sizeof *sb->version + sizeof *sb->requeue);
    void *m;
    if (size >= COLD_MAP_MIN) {
        /* Fresh anonymous pages read as zero and cost nothing until written
         * (calloc might hand back reused heap memory, and clear it). */
        m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return DP_ENOMEM;
        sb->cold_size = size;
    } else {
        if (!(m = calloc(1, size)))
            return DP_ENOMEM;
        sb->cold_size = 0;
    }
    sb->cold = m;
    char *p = m;
    sb->error = (char **)(void *)p;
    sb->version = (const char **)(void *)(p + n * sizeof *sb->error);
    sb->requeue = (int32_t *)(void *)(p + n * (sizeof *sb->error + sizeof *sb->version));
    atomic_init(&sb->any_error, false);
    atomic_init(&sb->any_version, false);
    atomic_init(&sb->any_requeue, false);
    return DP_OK;
}

void dp__slotbuf_release(dp_graph_t *g, dp_slotbuf_t *sb)
{
    if (!sb)
        return;
    if (sb->cold) {
        if (atomic_load(&sb->any_error))
            for (size_t j = 0; j < sb->n; j++)
                free(sb->error[j]);
        if (sb->cold_size)
            munmap(sb->cold, sb->cold_size);
        else
            free(sb->cold);
        sb->cold = NULL;
        sb->error = NULL;
        sb->version = NULL;
        sb->requeue = NULL;
    }
    free(atomic_exchange(&g->spare_slots, sb));
}
