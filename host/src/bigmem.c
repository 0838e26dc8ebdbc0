/* bigmem.c - see bigmem.h. */
#include "bigmem.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Below this a block is malloc'd: a mapping is worth its system calls only
 * when it spares many page faults or keeps many pages untouched. */
#define MAP_MIN (64 * 1024)
#define HUGE ((size_t)2 << 20)

/* In front of every block: how it was made. 64 bytes keep what follows
 * aligned for anything. */
typedef struct bighdr {
    size_t map_len; /* 0: malloc'd */
    void *map;      /* the mapping's start */
    char pad[48];
} bighdr_t;

/* Any thread (the queue's pushes prefault): relaxed, every thread would
 * store the same value. */
static size_t page_size(void)
{
    static _Atomic size_t ps;
    size_t v = atomic_load_explicit(&ps, memory_order_relaxed);
    if (!v) {
        long s = sysconf(_SC_PAGESIZE);
        v = s > 0 ? (size_t)s : 4096;
        atomic_store_explicit(&ps, v, memory_order_relaxed);
    }
    return v;
}

void *dp__bigmem_alloc(size_t dense, size_t sparse, size_t *sparse_at)
{
    size_t ps = page_size();
    size_t head = sizeof(bighdr_t) + dense;
    /* A dense part a little short of whole huge pages is given whole ones
     * (at most a quarter more): one fault each instead of hundreds for the
     * rest, and about as much memory as those small pages would have been
     * (100 000 slots of 16 bytes: 1.6 MB in one 2 MiB page). */
    if (head >= HUGE / 2) {
        size_t up = (head + HUGE - 1) / HUGE * HUGE;
        if ((up - head) * 4 <= up)
            head = up;
    }
    size_t at = sparse ? (head + ps - 1) / ps * ps : head;
    size_t total = at + sparse;
    if (sparse_at)
        *sparse_at = at - sizeof(bighdr_t);
    if (total < MAP_MIN) {
        bighdr_t *h = calloc(1, total);
        if (!h)
            return NULL;
        h->map_len = 0;
        return h + 1;
    }
    size_t len = (total + ps - 1) / ps * ps;
    /* Room to align the start on a huge page when the dense part fills
     * one; the slack is given back at once. */
    size_t slack = head >= HUGE ? HUGE : 0;
    char *m = mmap(NULL, len + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    char *p = m;
    if (slack) {
        p = (char *)(((uintptr_t)m + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
        if (p > m)
            munmap(m, (size_t)(p - m));
        if (p + len < m + len + slack)
            munmap(p + len, (size_t)(m + len + slack - (p + len)));
#ifdef MADV_HUGEPAGE
        /* Advice only: without THP (or with it off) nothing changes. */
        madvise(p, head / HUGE * HUGE, MADV_HUGEPAGE);
#endif
    }
#ifdef MADV_NOHUGEPAGE
    /* The sparse part stays in small pages: one entry written must not
     * bring in 2 MiB (with THP `always`). */
    if (sparse && len > at)
        madvise(p + at, len - at, MADV_NOHUGEPAGE);
#endif
    /* The dense part is written whole: in one system call where it is in
     * small pages (a huge page is one fault anyway). */
    size_t huge = slack ? head / HUGE * HUGE : 0;
    dp__bigmem_prefault(p + huge, head - huge);
    bighdr_t *h = (bighdr_t *)(void *)p;
    h->map_len = len;
    h->map = p;
    return h + 1;
}

void dp__bigmem_free(void *p)
{
    if (!p)
        return;
    bighdr_t *h = (bighdr_t *)p - 1;
    if (h->map_len)
        munmap(h->map, h->map_len);
    else
        free(h);
}

void dp__bigmem_zero(void *block, void *p, size_t len)
{
    bighdr_t *h = (bighdr_t *)block - 1;
    if (!h->map_len || len < 2 * page_size()) {
        memset(p, 0, len);
        return;
    }
    size_t ps = page_size();
    uintptr_t a = (uintptr_t)p, e = a + len;
    uintptr_t a2 = (a + ps - 1) / ps * ps, e2 = e / ps * ps;
    memset(p, 0, a2 - a);
    memset((void *)e2, 0, e - e2);
    /* Private anonymous pages given back read as zero again. */
    if (madvise((void *)a2, e2 - a2, MADV_DONTNEED) != 0)
        memset((void *)a2, 0, e2 - a2);
}

/* Below this, faults are few enough. */
#define PREFAULT_MIN (64 * 1024)

void dp__bigmem_prefault(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
    if (len < PREFAULT_MIN)
        return;
    size_t ps = page_size();
    uintptr_t a = ((uintptr_t)p + ps - 1) / ps * ps, e = ((uintptr_t)p + len) / ps * ps;
    if (e > a)
        (void)madvise((void *)a, e - a, MADV_POPULATE_WRITE); /* EINVAL before 5.14: faults as before */
#else
    (void)p;
    (void)len;
#endif
}
