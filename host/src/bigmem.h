/* bigmem.h - large per-job arrays in memory of their own (bigmem.c).
 *
 * A 100 000-job run writes 2.4 MB of slots; in 4 KiB pages that is ~600
 * first-touch page faults, ~2-3 us each on a virtual machine, more than
 * the whole run of no-op jobs costs (bench/README.md, "the first run").
 * Where the kernel has transparent huge pages in `madvise` mode, the part of
 * a block that fills whole 2 MiB pages is asked for in huge pages (one fault
 * and one clear for 2 MiB), the rest stays in 4 KiB pages. A block may also
 * hold a sparse tail that must stay in small pages (untouched pages cost
 * nothing there). Small blocks come from malloc.
 */
#ifndef DP_BIGMEM_H
#define DP_BIGMEM_H

#include <stddef.h>

/* A zero-filled block of `dense + sparse` bytes: `dense` bytes meant to be
 * written whole (huge pages where possible), then, page-aligned,
 * `sparse` bytes of which few pages are meant to be touched. *sparse_at is
 * the sparse part's offset from the returned pointer (NULL: not wanted).
 * NULL when out of memory. */
void *dp__bigmem_alloc(size_t dense, size_t sparse, size_t *sparse_at);

/* Frees a block of dp__bigmem_alloc (NULL: nothing). */
void dp__bigmem_free(void *p);

/* Zeroes `len` bytes at p inside a block's sparse part, giving their whole
 * pages back to the kernel rather than writing zeros over them (pages a
 * run never touched stay untouched). */
void dp__bigmem_zero(void *block, void *p, size_t len);

/* Memory about to be written whole (a fresh array, or the part of one not
 * written yet): its whole pages faulted in by one system call
 * (MADV_POPULATE_WRITE, Linux 5.14) instead of a page fault each as they
 * are first written, which on a virtual machine costs twice as much
 * (bench/README.md, "Session 15"). Its content is kept. Nothing for less
 * than 64 KiB, or where the kernel cannot. Any thread. */
void dp__bigmem_prefault(void *p, size_t len);

#endif /* DP_BIGMEM_H */
