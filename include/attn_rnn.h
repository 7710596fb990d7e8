/* attn_rnn.h - compatibility header: the include path and names of the first
 * releases, mapped to <attn/nn.h>, <attn/seq2seq.h>. New code includes
 * those and uses the new names (docs/api.md). */
#ifndef ATTN_RNN_COMPAT_H
#define ATTN_RNN_COMPAT_H

#include <attn/nn.h>
#include <attn/seq2seq.h>

#define attn_rnn_gru_cell attn_nn_gru_cell
#define attn_rnn_gru_cell_forward attn_nn_gru_cell_forward
#define attn_rnn_gru_cell_backward attn_nn_gru_cell_backward
#define attn_rnn_gru attn_nn_gru
#define attn_rnn_gru_saved attn_nn_gru_saved
#define attn_rnn_gru_saved_free attn_nn_gru_saved_free
#define attn_rnn_gru_forward attn_nn_gru_forward
#define attn_rnn_gru_backward attn_nn_gru_backward
#define attn_rnn_init attn_seq2seq_init
#define ATTN_RNN_INIT_BACKWARD ATTN_SEQ2SEQ_INIT_BACKWARD
#define ATTN_RNN_INIT_MEAN ATTN_SEQ2SEQ_INIT_MEAN
#define attn_rnn_config attn_seq2seq_config
#define attn_rnn_config_default attn_seq2seq_config_default
#define attn_rnn_config_to_json attn_seq2seq_config_to_json
#define attn_rnn_config_from_json attn_seq2seq_config_from_json
#define attn_rnn_model attn_seq2seq
#define attn_rnn_model_create attn_seq2seq_create
#define attn_rnn_model_free attn_seq2seq_free
#define attn_rnn_model_config attn_seq2seq_get_config
#define attn_rnn_model_param_count attn_seq2seq_param_count
#define attn_rnn_model_n_tensors attn_seq2seq_n_tensors
#define attn_rnn_model_tensor attn_seq2seq_tensor
#define attn_rnn_model_step attn_seq2seq_step
#define attn_rnn_model_zero_grad attn_seq2seq_zero_grad
#define attn_rnn_model_update attn_seq2seq_update
#define attn_rnn_model_steps_taken attn_seq2seq_steps_taken
#define attn_rnn_model_save attn_seq2seq_save
#define attn_rnn_model_load attn_seq2seq_load
#define attn_rnn_model_load_file attn_seq2seq_load_safetensors
#define attn_rnn_generate attn_seq2seq_generate

#endif
