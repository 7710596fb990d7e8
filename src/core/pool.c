/* pool.c - the explicit thread pool behind every parallel call. A run hands
 * out task indices through an atomic counter, and the calling thread works
 * too (it is worker 0). Which worker runs a task never changes a result:
 * tasks write disjoint outputs.
 *
 * Between runs a worker first waits busily (SPIN pauses, some tens of
 * microseconds) for the next one and only then sleeps on a condition
 * variable; the caller waits for the workers the same way. Decoding one
 * token of a language model makes a few hundred short runs, and waking a
 * sleeping thread for each would cost as much as the work. */
#define _POSIX_C_SOURCE 200809L
#include "core/core.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct worker_arg {
    struct attn__pool *pool;
    int tid;
} worker_arg;

struct attn__pool {
    int n_threads; /* including the calling thread */
    pthread_t *threads;
    worker_arg *args; /* owned by the pool: a worker never frees memory */
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    atomic_uint_fast64_t generation; /* bumped once per run (under lock) */
    atomic_int active;               /* workers still inside the current run */
    atomic_bool quit;
    /* the run: written before the generation is bumped (release), read
     * after a worker sees it (acquire) */
    attn__task_fn fn;
    void *arg;
    int64_t n_tasks;
    atomic_llong next;
};

static void drain(attn__pool *pool, int tid)
{
    for (;;) {
        int64_t t = atomic_fetch_add(&pool->next, 1);
        if (t >= pool->n_tasks) break;
        pool->fn(pool->arg, t, tid);
    }
}

enum { SPIN = 4096 };

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits until the pool's generation differs from seen (or quit): busily
 * first, then asleep. */
static void wait_run(attn__pool *pool, uint64_t seen)
{
    for (int s = 0; s < SPIN && atomic_load_explicit(&pool->generation, memory_order_acquire) == seen &&
                    !atomic_load(&pool->quit);
         s++)
        relax();
    pthread_mutex_lock(&pool->lock);
    while (!atomic_load(&pool->quit) && atomic_load(&pool->generation) == seen)
        pthread_cond_wait(&pool->wake, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}

static void *worker_main(void *p)
{
    worker_arg wa = *(worker_arg *)p;
    attn__pool *pool = wa.pool;
    uint64_t seen = 0;
    for (;;) {
        wait_run(pool, seen);
        if (atomic_load(&pool->quit)) break;
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        drain(pool, wa.tid);
        if (atomic_fetch_sub(&pool->active, 1) == 1) {
            pthread_mutex_lock(&pool->lock);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->lock);
        }
    }
    return NULL;
}

static void stop_workers(attn__pool *pool, int started)
{
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->quit, true);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < started; i++) pthread_join(pool->threads[i], NULL);
}

attn_status attn__pool_create(int n_threads, attn__pool **out)
{
    attn__pool *pool = attn__calloc(1, sizeof *pool);
    if (pool == NULL) return attn_fail(ATTN_NO_MEMORY, "thread pool: out of memory");
    pool->n_threads = n_threads;
    if (n_threads > 1) {
        pool->threads = attn__calloc((size_t)(n_threads - 1), sizeof *pool->threads);
        pool->args = attn__calloc((size_t)(n_threads - 1), sizeof *pool->args);
        if (pool->threads == NULL || pool->args == NULL) {
            attn__free(pool->threads);
            attn__free(pool->args);
            attn__free(pool);
            return attn_fail(ATTN_NO_MEMORY, "thread pool: out of memory");
        }
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    atomic_init(&pool->next, 0);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->active, 0);
    atomic_init(&pool->quit, false);
    for (int i = 0; i < n_threads - 1; i++) {
        pool->args[i] = (worker_arg){pool, i + 1};
        if (pthread_create(&pool->threads[i], NULL, worker_main, &pool->args[i]) != 0) {
            stop_workers(pool, i);
            pthread_mutex_destroy(&pool->lock);
            pthread_cond_destroy(&pool->wake);
            pthread_cond_destroy(&pool->done);
            attn__free(pool->threads);
            attn__free(pool->args);
            attn__free(pool);
            return attn_fail(ATTN_THREAD, "thread pool: pthread_create failed for worker %d", i + 1);
        }
    }
    *out = pool;
    return ATTN_OK;
}

void attn__pool_free(attn__pool *pool)
{
    if (pool == NULL) return;
    stop_workers(pool, pool->n_threads - 1);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    attn__free(pool->threads);
    attn__free(pool->args);
    attn__free(pool);
}

int attn__pool_threads(const attn__pool *pool) { return pool->n_threads; }

void attn__pool_run(attn__pool *pool, int64_t n_tasks, attn__task_fn fn, void *arg)
{
    if (n_tasks <= 0) return;
    if (pool->n_threads == 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(arg, t, 0);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    pool->n_tasks = n_tasks;
    atomic_store(&pool->next, 0);
    atomic_store(&pool->active, pool->n_threads - 1);
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);

    drain(pool, 0);

    for (int s = 0; s < SPIN && atomic_load(&pool->active) > 0; s++) relax();
    pthread_mutex_lock(&pool->lock);
    while (atomic_load(&pool->active) > 0) pthread_cond_wait(&pool->done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}
