/* attn_nn.h - compatibility header: the include path and names of the first
 * releases, mapped to <attn/nn.h>, <attn/safetensors.h>, <attn/transformer.h>. New code includes
 * those and uses the new names (docs/api.md). */
#ifndef ATTN_NN_COMPAT_H
#define ATTN_NN_COMPAT_H

#include <attn/nn.h>
#include <attn/safetensors.h>
#include <attn/transformer.h>

#define ATTN_ST_F32 ATTN_DTYPE_F32
#define ATTN_ST_F64 ATTN_DTYPE_F64
#define ATTN_ST_F16 ATTN_DTYPE_F16
#define ATTN_ST_BF16 ATTN_DTYPE_BF16
#define ATTN_ST_I64 ATTN_DTYPE_I64
#define ATTN_ST_I32 ATTN_DTYPE_I32
#define ATTN_ST_U8 ATTN_DTYPE_U8
#define ATTN_ST_BOOL ATTN_DTYPE_BOOL
#define ATTN_ST_MAX_DIMS ATTN_SAFETENSORS_MAX_DIMS
#define attn_st_file attn_safetensors
#define attn_st_open attn_safetensors_load
#define attn_st_open_memory attn_safetensors_load_memory
#define attn_st_close attn_safetensors_free
#define attn_st_count attn_safetensors_count
#define attn_st_get attn_safetensors_get
#define attn_st_find attn_safetensors_find
#define attn_st_read_f32 attn_safetensors_read_f32
#define attn_st_metadata attn_safetensors_metadata
#define attn_st_save attn_safetensors_save
#define attn_st_info attn_safetensors_info
#define attn_st_entry attn_safetensors_entry
#define ATTN_NN_GELU ATTN_NN_ACT_GELU
#define ATTN_NN_RELU ATTN_NN_ACT_RELU
#define ATTN_NN_LAYERNORM ATTN_NN_NORM_LAYERNORM
#define ATTN_NN_RMSNORM ATTN_NN_NORM_RMSNORM
#define ATTN_NN_SCHED_CONSTANT ATTN_NN_SCHEDULE_CONSTANT
#define ATTN_NN_SCHED_COSINE ATTN_NN_SCHEDULE_COSINE
#define ATTN_NN_SCHED_INVSQRT ATTN_NN_SCHEDULE_INVSQRT
#define attn_nn_arch attn_transformer_arch
#define ATTN_NN_ENCDEC ATTN_TRANSFORMER_ARCH_ENCDEC
#define ATTN_NN_DECODER ATTN_TRANSFORMER_ARCH_DECODER
#define attn_nn_config attn_transformer_config
#define attn_nn_config_default attn_transformer_config_default
#define attn_nn_config_to_json attn_transformer_config_to_json
#define attn_nn_config_from_json attn_transformer_config_from_json
#define attn_nn_model attn_transformer
#define attn_nn_model_create attn_transformer_create
#define attn_nn_model_free attn_transformer_free
#define attn_nn_model_config attn_transformer_get_config
#define attn_nn_model_param_count attn_transformer_param_count
#define attn_nn_model_n_tensors attn_transformer_n_tensors
#define attn_nn_model_tensor attn_transformer_tensor
#define attn_nn_model_step attn_transformer_step
#define attn_nn_model_zero_grad attn_transformer_zero_grad
#define attn_nn_model_update attn_transformer_update
#define attn_nn_model_steps_taken attn_transformer_steps_taken
#define attn_nn_model_save attn_transformer_save
#define attn_nn_model_load attn_transformer_load
#define attn_nn_model_load_file attn_transformer_load_safetensors
#define attn_nn_generate attn_transformer_generate
#define attn_st_dtype attn_dtype

#endif
