/* Counting allocations. Plain builds interpose malloc and friends in the
 * test executable (it wins symbol lookup over libc for every library) and
 * forward to glibc's __libc_* entry points. Under AddressSanitizer, which
 * owns malloc itself, its allocation hook counts instead. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#include "alloc_count.h"

static atomic_ulong count;

unsigned long alloc_count(void) { return atomic_load(&count); }

#if defined(__SANITIZE_ADDRESS__)
/* from <sanitizer/allocator_interface.h>, which gcc's packages do not ship */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static void on_malloc(const volatile void *p, size_t size) {
    (void)p;
    (void)size;
    atomic_fetch_add(&count, 1);
}
static void on_free(const volatile void *p) { (void)p; }

__attribute__((constructor)) static void install_hooks(void) {
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n) {
    atomic_fetch_add(&count, 1);
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t m) {
    atomic_fetch_add(&count, 1);
    return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n) {
    atomic_fetch_add(&count, 1);
    return __libc_realloc(p, n);
}
int posix_memalign(void **p, size_t align, size_t n) {
    atomic_fetch_add(&count, 1);
    void *q = __libc_memalign(align, n);
    if (!q) return 12; /* ENOMEM */
    *p = q;
    return 0;
}
void *memalign(size_t align, size_t n) {
    atomic_fetch_add(&count, 1);
    return __libc_memalign(align, n);
}
void *aligned_alloc(size_t align, size_t n) {
    atomic_fetch_add(&count, 1);
    return __libc_memalign(align, n);
}
#endif

bool alloc_count_works(void) {
    unsigned long before = alloc_count();
    void *volatile p = malloc(24);
    unsigned long after = alloc_count();
    free(p);
    return after > before;
}
