/* test_bigmem.c - large per-job arrays (host/src/bigmem.c): blocks that
 * start zeroed, a sparse part zeroed again by giving pages back, and
 * prefaulting that keeps what memory holds and leaves it resident. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "bigmem.h"

static size_t page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* Pages of [p, p + len) resident, counting whole pages inside it. */
static size_t resident_pages(const void *p, size_t len)
{
    size_t ps = page();
    uintptr_t a = ((uintptr_t)p + ps - 1) / ps * ps, e = ((uintptr_t)p + len) / ps * ps;
    if (e <= a)
        return 0;
    size_t n = (e - a) / ps, in = 0;
    unsigned char *v = malloc(n);
    assert_non_null(v);
    assert_int_equal(mincore((void *)a, e - a, v), 0);
    for (size_t i = 0; i < n; i++)
        in += v[i] & 1;
    free(v);
    return in;
}

/* Whether this kernel populates on request (Linux 5.14): otherwise the
 * prefault is a no-op and only content is checked. */
static bool kernel_populates(void)
{
#ifdef MADV_POPULATE_WRITE
    size_t ps = page();
    void *m = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    bool ok = madvise(m, ps, MADV_POPULATE_WRITE) == 0;
    munmap(m, ps);
    return ok;
#else
    return false;
#endif
}

/* Prefaulting keeps every byte, the partial pages at both ends included,
 * and writes nothing outside the range. */
static void test_prefault_keeps_content(void **state)
{
    (void)state;
    size_t len = 3 * 1024 * 1024 + 123;
    unsigned char *b = malloc(len + 64);
    assert_non_null(b);
    for (size_t i = 0; i < len + 64; i++)
        b[i] = (unsigned char)(i * 31u + 7u);
    dp__bigmem_prefault(b + 17, len - 40);
    for (size_t i = 0; i < len + 64; i++)
        if (b[i] != (unsigned char)(i * 31u + 7u))
            fail_msg("byte %zu changed", i);
    free(b);
}

/* Fresh memory prefaulted is resident and still reads zero; below the
 * threshold nothing is done (and nothing breaks). */
static void test_prefault_makes_resident(void **state)
{
    (void)state;
    size_t ps = page(), len = 256 * ps;
    unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
#ifdef MADV_NOHUGEPAGE
    madvise(m, len, MADV_NOHUGEPAGE); /* small pages: counted one by one below */
#endif
    assert_int_equal(resident_pages(m, len), 0);
    /* Unaligned: the whole pages inside the range become resident, the
     * partial first and last ones are left to fault as written. */
    dp__bigmem_prefault(m + 100, len - 200);
    if (kernel_populates()) {
        assert_int_equal(resident_pages(m + ps, len - 2 * ps), 254);
        assert_int_equal(resident_pages(m, ps), 0);
    }
    for (size_t i = 0; i < len; i++)
        if (m[i])
            fail_msg("byte %zu of fresh memory is %u", i, m[i]);
    munmap(m, len);

    unsigned char small[1024];
    memset(small, 5, sizeof small);
    dp__bigmem_prefault(small, sizeof small);
    for (size_t i = 0; i < sizeof small; i++)
        assert_int_equal(small[i], 5);
    dp__bigmem_prefault(NULL, 0);
}

/* A block, small or mapped (with huge pages or not), starts zero in both
 * parts; zeroing part of the sparse part clears exactly that part. */
static void test_alloc_zero_and_sparse(void **state)
{
    (void)state;
    size_t sizes[] = {100, 200 * 1024, 1600 * 1024, 2400 * 1024, 5 * 1024 * 1024};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t dense = sizes[k], sparse = 3 * page() * 16 + 40, at = 0;
        unsigned char *b = dp__bigmem_alloc(dense, sparse, &at);
        assert_non_null(b);
        assert_true(at >= dense);
        for (size_t i = 0; i < dense; i++)
            if (b[i])
                fail_msg("dense byte %zu of %zu is %u", i, dense, b[i]);
        for (size_t i = 0; i < sparse; i++)
            if (b[at + i])
                fail_msg("sparse byte %zu is %u", i, b[at + i]);
        memset(b, 0xab, dense);
        memset(b + at, 0xcd, sparse);
        size_t from = page() + 3, len = 5 * page() + 11;
        dp__bigmem_zero(b, b + at + from, len);
        for (size_t i = 0; i < sparse; i++) {
            unsigned want = i >= from && i < from + len ? 0 : 0xcd;
            if (b[at + i] != want)
                fail_msg("sparse byte %zu is %u, not %u", i, b[at + i], want);
        }
        for (size_t i = 0; i < dense; i++)
            if (b[i] != 0xab)
                fail_msg("dense byte %zu changed", i);
        dp__bigmem_free(b);
    }
    dp__bigmem_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefault_keeps_content),
        cmocka_unit_test(test_prefault_makes_resident),
        cmocka_unit_test(test_alloc_zero_and_sparse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
