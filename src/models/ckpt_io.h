/* ckpt_io.h - what every model's checkpoint shares (ckpt_io.c): a set of
 * named parameter tensors with their AdamW moments, written as one
 * safetensors file with "attn.format", "attn.config" and "attn.step" in
 * __metadata__, and read back as untrusted input. */
#ifndef ATTN_NN_CKPT_IO_H
#define ATTN_NN_CKPT_IO_H

#include "nn/nn_private.h"

#include <attn/safetensors.h>

/* Writes every tensor (and "optim.m."/"optim.v." moments if with_optim),
 * the tag, config JSON and step, then the caller's n_meta (<= 64) pairs;
 * atomically (attn_safetensors_save). fn names the caller in messages. */
attn_status attn__nn_ckpt_save(const char *fn, const char *path, const char *tag,
                               const char *config, int64_t steps, const attn__nn_paramset *ps,
                               int with_optim, const char *const *meta_keys,
                               const char *const *meta_values, int64_t n_meta);

/* Checks the tag, returns the config JSON (owned by f), the step, and the
 * floats the file's tensors hold (to bound a config before allocating).
 * Messages start with what ("checkpoint"). */
attn_status attn__nn_ckpt_header(const attn_safetensors *f, const char *what, const char *tag,
                                 const char **config, int64_t *steps, double *file_floats);

/* Fills ps from f: exactly its tensors (with or without moments, as the
 * file has them), each F32, of the exact shape, every value finite. */
attn_status attn__nn_ckpt_read(const attn_safetensors *f, const char *what,
                               const attn__nn_paramset *ps);

#endif /* ATTN_NN_CKPT_IO_H */
