/* run.h - the context's thread pool, for every tier: attn__ctx_run hands
 * tasks to the threads of an attn_ctx (the tiers above the core have no
 * pool of their own). Not installed; not API. */
#ifndef ATTN_CORE_RUN_H
#define ATTN_CORE_RUN_H

#include "core/check.h"

#include <stdint.h>

/* task in [0, n_tasks), tid in [0, n_threads): the worker running it. */
typedef void (*attn__task_fn)(void *arg, int64_t task, int tid);

/* Runs fn(arg, task, tid) for every task in [0, n_tasks) on ctx's threads
 * (the calling thread is tid 0) and returns when all are done. Tasks must
 * write disjoint outputs; which thread runs a task must not change any
 * result. Not reentrant: a task must not call attn__ctx_run on the same
 * ctx, and one ctx runs one call at a time. */
ATTN__SHARED void attn__ctx_run(attn_ctx *ctx, int64_t n_tasks, attn__task_fn fn, void *arg);

#endif /* ATTN_CORE_RUN_H */
