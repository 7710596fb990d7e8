/* pool.c - the explicit thread pool behind every parallel call. Workers
 * sleep on a condition variable; a run hands out task indices through an
 * atomic counter, and the calling thread works too (it is worker 0). Which
 * worker runs a task never changes a result: tasks write disjoint outputs. */
#define _POSIX_C_SOURCE 200809L
#include "core/core.h"

#include <pthread.h>
#include <stdatomic.h>

struct attn__pool {
    int n_threads; /* including the calling thread */
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    uint64_t generation; /* bumped once per run */
    int active;          /* workers still inside the current run */
    bool quit;
    attn__task_fn fn;
    void *arg;
    int64_t n_tasks;
    atomic_llong next;
};

typedef struct {
    attn__pool *pool;
    int tid;
} worker_arg;

static void drain(attn__pool *pool, int tid)
{
    for (;;) {
        int64_t t = atomic_fetch_add(&pool->next, 1);
        if (t >= pool->n_tasks) break;
        pool->fn(pool->arg, t, tid);
    }
}

static void *worker_main(void *p)
{
    worker_arg wa = *(worker_arg *)p;
    attn__free(p);
    attn__pool *pool = wa.pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->quit && pool->generation == seen)
            pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->quit) break;
        seen = pool->generation;
        pthread_mutex_unlock(&pool->lock);
        drain(pool, wa.tid);
        pthread_mutex_lock(&pool->lock);
        if (--pool->active == 0) pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

static void stop_workers(attn__pool *pool, int started)
{
    pthread_mutex_lock(&pool->lock);
    pool->quit = true;
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
        if (pool->threads == NULL) {
            attn__free(pool);
            return attn_fail(ATTN_NO_MEMORY, "thread pool: out of memory");
        }
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    atomic_init(&pool->next, 0);
    for (int i = 0; i < n_threads - 1; i++) {
        worker_arg *wa = attn__malloc(sizeof *wa);
        attn_status st = ATTN_OK;
        if (wa == NULL) {
            st = attn_fail(ATTN_NO_MEMORY, "thread pool: out of memory");
        } else {
            wa->pool = pool;
            wa->tid = i + 1;
            if (pthread_create(&pool->threads[i], NULL, worker_main, wa) != 0) {
                attn__free(wa);
                st = attn_fail(ATTN_THREAD, "thread pool: pthread_create failed for worker %d", i + 1);
            }
        }
        if (st != ATTN_OK) {
            stop_workers(pool, i);
            pthread_mutex_destroy(&pool->lock);
            pthread_cond_destroy(&pool->wake);
            pthread_cond_destroy(&pool->done);
            attn__free(pool->threads);
            attn__free(pool);
            return st;
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
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->arg = arg;
    pool->n_tasks = n_tasks;
    atomic_store(&pool->next, 0);
    pool->active = pool->n_threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);

    drain(pool, 0);

    pthread_mutex_lock(&pool->lock);
    while (pool->active > 0) pthread_cond_wait(&pool->done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}
