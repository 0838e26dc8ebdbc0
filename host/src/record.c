/* record.c - the slot buffer of a run: taken from the graph at the start,
 * given back to the graph when the result that took it is freed, its
 * sparse arrays zeroed for the next run (record.h). */
#include "record.h"

#include <stdlib.h>

#include "bigmem.h"

_Static_assert(sizeof(dp_slot_t) == 16, "a slot is 16 bytes (record.h)");

dp_slotbuf_t *dp__slotbuf_take(dp_graph_t *g)
{
    size_t n = g->njobs;
    dp_slotbuf_t *sb = atomic_exchange(&g->spare_slots, NULL);
    if (sb && sb->n != n) {
        dp__slotbuf_free(sb);
        sb = NULL;
    }
    if (sb)
        return sb;
    size_t nn = n ? n : 1, at;
    size_t sparse = nn * (sizeof *sb->end + sizeof *sb->error + sizeof *sb->version + sizeof *sb->requeue +
                          sizeof *sb->waits) +
                    8u;
    char *b = dp__bigmem_alloc(sizeof *sb + nn * sizeof sb->slot[0], sparse, &at);
    if (!b)
        return NULL;
    sb = (dp_slotbuf_t *)(void *)b;
    sb->n = n;
    char *sp = b + at;
    sb->end = (uint64_t *)(void *)sp;
    sb->error = (char **)(void *)(sp + nn * sizeof *sb->end);
    sb->version = (const char **)(void *)(sp + nn * (sizeof *sb->end + sizeof *sb->error));
    sb->requeue = (int32_t *)(void *)(sp + nn * (sizeof *sb->end + sizeof *sb->error + sizeof *sb->version));
    atomic_init(&sb->any_error, false);
    atomic_init(&sb->any_version, false);
    /* After the requeue hints, whose 4-byte entries may leave it unaligned. */
    size_t wat = (nn * (sizeof *sb->end + sizeof *sb->error + sizeof *sb->version + sizeof *sb->requeue) + 7u) & ~7u;
    sb->waits = (dp_slot_waits_t *)(void *)(sp + wat);
    atomic_init(&sb->any_requeue, false);
    atomic_init(&sb->any_waits, false);
    return sb;
}

void dp__slotbuf_free(dp_slotbuf_t *sb)
{
    dp__bigmem_free(sb);
}

void dp__slotbuf_release(dp_graph_t *g, dp_slotbuf_t *sb)
{
    if (!sb)
        return;
    size_t nn = sb->n ? sb->n : 1;
    /* Only what a run wrote needs undoing: usually nothing. */
    if (atomic_load(&sb->any_error)) {
        for (size_t j = 0; j < sb->n; j++)
            free(sb->error[j]);
        dp__bigmem_zero(sb, sb->error, nn * sizeof *sb->error);
        atomic_store(&sb->any_error, false);
    }
    if (atomic_load(&sb->any_version)) {
        dp__bigmem_zero(sb, sb->version, nn * sizeof *sb->version);
        atomic_store(&sb->any_version, false);
    }
    if (atomic_load(&sb->any_requeue)) {
        dp__bigmem_zero(sb, sb->requeue, nn * sizeof *sb->requeue);
        atomic_store(&sb->any_requeue, false);
    }
    if (atomic_load(&sb->any_waits)) {
        dp__bigmem_zero(sb, sb->waits, nn * sizeof *sb->waits);
        atomic_store(&sb->any_waits, false);
    }
    dp__slotbuf_free(atomic_exchange(&g->spare_slots, sb));
}
