/* alloc.c - the one allocator hook every allocation of the library goes
 * through, so that callers can substitute their own and tests can inject
 * out-of-memory failures. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

static void *default_alloc(size_t bytes, void *user)
{
    (void)user;
    return malloc(bytes);
}

static void default_free(void *p, void *user)
{
    (void)user;
    free(p);
}

static attn_alloc_fn hook_alloc = default_alloc;
static attn_free_fn hook_free = default_free;
static void *hook_user;

void attn_set_allocator(attn_alloc_fn alloc, attn_free_fn release, void *user)
{
    if (alloc == NULL || release == NULL) {
        hook_alloc = default_alloc;
        hook_free = default_free;
        hook_user = NULL;
        return;
    }
    hook_alloc = alloc;
    hook_free = release;
    hook_user = user;
}

void *attn__malloc(size_t bytes)
{
    return bytes == 0 ? NULL : hook_alloc(bytes, hook_user);
}

void *attn__calloc(size_t count, size_t size)
{
    if (count == 0 || size == 0 || count > SIZE_MAX / size) return NULL;
    void *p = hook_alloc(count * size, hook_user);
    if (p != NULL) memset(p, 0, count * size);
    return p;
}

void attn__free(void *p)
{
    if (p != NULL) hook_free(p, hook_user);
}

void attn__alloc_hooks(attn_alloc_fn *alloc, attn_free_fn *release, void **user)
{
    *alloc = hook_alloc;
    *release = hook_free;
    *user = hook_user;
}

void *attn_alloc(size_t bytes) { return attn__malloc(bytes); }
void *attn_calloc(size_t count, size_t size) { return attn__calloc(count, size); }
void attn_release(void *p) { attn__free(p); }
