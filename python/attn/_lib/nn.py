"""libattn_nn (attn/nn.h, attn/transformer.h, attn/seq2seq.h, attn/bert.h):
the toolkit's structs and functions. Float arrays are passed as addresses
(c_void_p) of float32 buffers."""
from __future__ import annotations

import ctypes

from . import load
from .core import Tensor

c_int, c_i32, c_i64, c_u64, c_dbl, c_p = (ctypes.c_int, ctypes.c_int32, ctypes.c_int64,
                                          ctypes.c_uint64, ctypes.c_double, ctypes.c_void_p)
st = ctypes.c_int  # attn_status
FP = ctypes.POINTER(ctypes.c_float)


class AdamW(ctypes.Structure):
    """attn_nn_adamw."""
    _fields_ = [("lr", c_dbl), ("beta1", c_dbl), ("beta2", c_dbl), ("eps", c_dbl),
                ("weight_decay", c_dbl)]


class Mha(ctypes.Structure):
    """attn_nn_mha: sizes, then the weight pointers, then their gradients."""
    _fields_ = [("embed_dim", c_i64), ("n_heads", c_i64), ("n_kv_heads", c_i64),
                ("head_dim", c_i64), ("kdim", c_i64), ("vdim", c_i64), ("packed", c_int)] + \
               [(n, FP) for n in (
                   "in_proj_weight", "in_proj_bias", "q_proj_weight", "k_proj_weight",
                   "v_proj_weight", "out_proj_weight", "out_proj_bias", "d_in_proj_weight",
                   "d_in_proj_bias", "d_q_proj_weight", "d_k_proj_weight", "d_v_proj_weight",
                   "d_out_proj_weight", "d_out_proj_bias")]


class MhaOpts(ctypes.Structure):
    """attn_nn_mha_opts."""
    _fields_ = [("causal", c_int), ("k_lens", ctypes.POINTER(c_i64)),
                ("key_keep", ctypes.POINTER(ctypes.c_uint8)), ("dropout_p", c_dbl),
                ("seed", c_u64), ("offset", c_u64), ("rope_pos", ctypes.POINTER(c_i32)),
                ("rope_kpos", ctypes.POINTER(c_i32)), ("rope_theta", c_dbl),
                ("n_seqs", c_i64), ("cu_seqlens_q", ctypes.POINTER(c_i64)),
                ("cu_seqlens_k", ctypes.POINTER(c_i64))]


class MhaSaved(ctypes.Structure):
    """attn_nn_mha_saved: what backward needs, owned by the library."""
    _fields_ = [("B", c_i64), ("Sq", c_i64), ("Sk", c_i64)] + \
               [(n, FP) for n in ("q", "k", "v", "o", "lse")]


class Probe(ctypes.Structure):
    """attn_nn_attn_probe: one attention call as an explanation hook sees it."""
    _fields_ = [("stack", c_int), ("layer", c_i64), ("cross", c_int),
                ("q", Tensor), ("k", Tensor), ("v", Tensor), ("lse", Tensor), ("d_o", Tensor),
                ("params", c_p), ("score", c_p), ("row", c_i64)]


# attn_nn_attn_hook: status hook(ctx, probe, user)
Hook = ctypes.CFUNCTYPE(c_int, c_p, ctypes.POINTER(Probe), c_p)


class Param(ctypes.Structure):
    """attn_nn_param: one named tensor of a model, its value and gradient."""
    _fields_ = [("name", ctypes.c_char_p), ("ndim", c_int), ("shape", c_i64 * 4),
                ("numel", c_i64), ("value", FP), ("grad", FP), ("decay", c_int)]


class Batch(ctypes.Structure):
    """attn_nn_batch."""
    _fields_ = [("B", c_i64), ("S_src", c_i64), ("S_tgt", c_i64),
                ("src", ctypes.POINTER(c_i32)), ("tgt_in", ctypes.POINTER(c_i32)),
                ("tgt_out", ctypes.POINTER(c_i32)), ("src_lens", ctypes.POINTER(c_i64)),
                ("tgt_lens", ctypes.POINTER(c_i64)), ("pad_id", c_i32),
                ("cu_seqlens_src", ctypes.POINTER(c_i64)), ("cu_seqlens_tgt", ctypes.POINTER(c_i64))]


class TrainOpts(ctypes.Structure):
    """attn_nn_train_opts."""
    _fields_ = [("training", c_int), ("seed", c_u64), ("label_smoothing", c_dbl),
                ("checkpointing", c_int)]


class GenOpts(ctypes.Structure):
    """attn_nn_gen_opts."""
    _fields_ = [("bos_id", c_i32), ("eos_id", c_i32), ("max_new", c_i64), ("beam", c_i64),
                ("length_penalty", c_dbl)]


class GruCell(ctypes.Structure):
    """attn_nn_gru_cell: sizes, weights and their gradients."""
    _fields_ = [("input_size", c_i64), ("hidden_size", c_i64)] + \
               [(n, FP) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                  "d_weight_ih", "d_weight_hh", "d_bias_ih", "d_bias_hh")]


class Gru(ctypes.Structure):
    """attn_nn_gru: one or two directions."""
    _fields_ = [("bidirectional", c_int), ("dir", GruCell * 2)]


class GruSaved(ctypes.Structure):
    """attn_nn_gru_saved."""
    _fields_ = [("B", c_i64), ("T", c_i64), ("h_prev", FP), ("gates", FP)]


class TransformerConfig(ctypes.Structure):
    """attn_transformer_config."""
    _fields_ = [("arch", c_int), ("vocab", c_i64), ("d_model", c_i64), ("n_heads", c_i64),
                ("n_kv_heads", c_i64), ("d_ff", c_i64), ("n_enc_layers", c_i64),
                ("n_dec_layers", c_i64), ("max_len", c_i64), ("norm_first", c_int),
                ("norm", c_int), ("pos", c_int), ("act", c_int), ("norm_eps", c_dbl),
                ("dropout", c_dbl), ("attn_dropout", c_dbl), ("rope_theta", c_dbl),
                ("tie_embeddings", c_int)]


class Seq2SeqConfig(ctypes.Structure):
    """attn_seq2seq_config."""
    _fields_ = [("vocab", c_i64), ("embed", c_i64), ("hidden", c_i64), ("dec_hidden", c_i64),
                ("attn_dim", c_i64), ("init", c_int)]


class BertConfig(ctypes.Structure):
    """attn_bert_config."""
    _fields_ = [("vocab_size", c_i64), ("hidden_size", c_i64), ("n_layers", c_i64),
                ("n_heads", c_i64), ("intermediate_size", c_i64), ("max_position", c_i64),
                ("type_vocab_size", c_i64), ("layer_norm_eps", c_dbl),
                ("max_seq_length", c_i64)]


PA, PPar = ctypes.POINTER(AdamW), ctypes.POINTER(Param)
PI64 = ctypes.POINTER(c_i64)
PD = ctypes.POINTER(c_dbl)
PMha, PMhaOpts, PMhaSaved = (ctypes.POINTER(Mha), ctypes.POINTER(MhaOpts),
                             ctypes.POINTER(MhaSaved))
PCell, PGru, PGruSaved = (ctypes.POINTER(GruCell), ctypes.POINTER(Gru),
                          ctypes.POINTER(GruSaved))
PBatch, PTrainOpts, PGenOpts = (ctypes.POINTER(Batch), ctypes.POINTER(TrainOpts),
                                ctypes.POINTER(GenOpts))
PTCfg, PSCfg = ctypes.POINTER(TransformerConfig), ctypes.POINTER(Seq2SeqConfig)
PPC = ctypes.POINTER(ctypes.c_char_p)

FUNCTIONS = [
    # layers (attn/nn.h)
    ("attn_nn_linear_forward", st, c_p, c_p, c_i64, c_i64, c_p, c_p, c_i64, c_p),
    ("attn_nn_linear_backward", st, c_p, c_p, c_i64, c_i64, c_p, c_i64, c_p, c_p, c_p, c_p),
    ("attn_nn_embedding_forward", st, c_p, c_i64, c_p, c_i64, c_i64, c_p),
    ("attn_nn_embedding_backward", st, c_p, c_i64, c_i64, c_i64, c_p, c_p),
    ("attn_nn_layernorm_forward", st, c_p, c_i64, c_i64, c_p, c_p, c_dbl, c_p, c_p, c_p),
    ("attn_nn_layernorm_backward", st, c_p, c_i64, c_i64, c_p, c_p, c_p, c_p, c_p, c_p, c_p),
    ("attn_nn_rmsnorm_forward", st, c_p, c_i64, c_i64, c_p, c_dbl, c_p, c_p),
    ("attn_nn_rmsnorm_backward", st, c_p, c_i64, c_i64, c_p, c_p, c_p, c_p, c_p),
    ("attn_nn_act_forward", st, c_int, c_p, c_i64, c_p),
    ("attn_nn_act_backward", st, c_int, c_p, c_i64, c_p, c_p),
    ("attn_nn_dropout_forward", st, c_p, c_i64, c_dbl, c_u64, c_u64, c_p),
    ("attn_nn_dropout_backward", st, c_p, c_i64, c_dbl, c_u64, c_u64, c_p),
    ("attn_nn_dropout_keep", c_int, c_u64, c_u64, c_dbl, c_i64),
    ("attn_nn_sinusoidal", st, c_i64, c_i64, c_p),
    ("attn_nn_rope_forward", st, c_p, c_i64, c_i64, c_i64, c_p, c_dbl, c_p),
    ("attn_nn_rope_backward", st, c_p, c_i64, c_i64, c_i64, c_p, c_dbl, c_p),
    ("attn_nn_cross_entropy", st, c_p, c_i64, c_i64, c_p, c_i32, c_dbl, c_dbl, PD, PI64, c_p),
    ("attn_nn_adamw_default", AdamW),
    ("attn_nn_adamw_step", st, PA, c_i64, c_p, c_p, c_p, c_p, c_i64, c_int),
    ("attn_nn_clip_grad_norm", st, ctypes.POINTER(c_p), PI64, c_int, c_dbl, PD),
    ("attn_nn_lr", st, c_int, c_i64, c_i64, c_i64, c_dbl, c_dbl, PD),
    # multi-head attention
    ("attn_nn_mha_forward", st, c_p, PMha, FP, FP, c_i64, c_i64, c_i64, PMhaOpts, FP, FP,
     c_int, PMhaSaved),
    ("attn_nn_mha_backward", st, c_p, PMha, FP, FP, PMhaOpts, PMhaSaved, FP, FP, FP),
    ("attn_nn_mha_saved_free", None, PMhaSaved),
    # explanation probes
    ("attn_nn_attn_probe_weights", st, c_p, ctypes.POINTER(Probe), c_p, c_p),
    # GRU
    ("attn_nn_gru_cell_forward", st, c_p, PCell, FP, FP, c_i64, FP, FP),
    ("attn_nn_gru_cell_backward", st, c_p, PCell, FP, FP, c_i64, FP, FP, FP, FP),
    ("attn_nn_gru_forward", st, c_p, PGru, FP, c_i64, c_i64, PI64, FP, FP, FP, PGruSaved),
    ("attn_nn_gru_backward", st, c_p, PGru, FP, PI64, PGruSaved, FP, FP, FP, FP),
    ("attn_nn_gru_saved_free", None, PGruSaved),
    # the transformer (attn/transformer.h)
    ("attn_transformer_config_default", TransformerConfig, c_int),
    ("attn_transformer_config_to_json", st, PTCfg, ctypes.c_char_p, ctypes.c_size_t),
    ("attn_transformer_create", st, PTCfg, c_u64, ctypes.POINTER(c_p)),
    ("attn_transformer_free", None, c_p),
    ("attn_transformer_get_config", PTCfg, c_p),
    ("attn_transformer_param_count", c_i64, c_p),
    ("attn_transformer_n_tensors", c_i64, c_p),
    ("attn_transformer_tensor", st, c_p, c_i64, PPar),
    ("attn_transformer_step", st, c_p, c_p, PBatch, PTrainOpts, c_int, PD, FP,
     ctypes.POINTER(ctypes.c_size_t)),
    ("attn_transformer_zero_grad", None, c_p),
    ("attn_transformer_update", st, c_p, PA, c_dbl, c_dbl, PD),
    ("attn_transformer_steps_taken", c_i64, c_p),
    ("attn_transformer_save", st, c_p, ctypes.c_char_p, c_int, PPC, PPC, c_i64),
    ("attn_transformer_load", st, ctypes.c_char_p, ctypes.POINTER(c_p)),
    ("attn_transformer_generate", st, c_p, c_p, ctypes.POINTER(c_i32), c_i64, PGenOpts,
     ctypes.POINTER(c_i32), c_i64, PI64, FP),
    # the GRU encoder-decoder (attn/seq2seq.h)
    ("attn_seq2seq_config_default", Seq2SeqConfig),
    ("attn_seq2seq_create", st, PSCfg, c_u64, ctypes.POINTER(c_p)),
    ("attn_seq2seq_free", None, c_p),
    ("attn_seq2seq_n_tensors", c_i64, c_p),
    ("attn_seq2seq_tensor", st, c_p, c_i64, PPar),
    ("attn_seq2seq_zero_grad", None, c_p),
    ("attn_seq2seq_step", st, c_p, c_p, PBatch, c_dbl, c_int, PD, FP),
    ("attn_seq2seq_update", st, c_p, PA, c_dbl, c_dbl, PD),
    ("attn_seq2seq_generate", st, c_p, c_p, ctypes.POINTER(c_i32), c_i64, c_i64, PI64,
     PGenOpts, ctypes.POINTER(c_i32), c_i64, PI64, FP),
    # BERT (attn/bert.h)
    ("attn_bert_load", st, ctypes.c_char_p, ctypes.POINTER(c_p)),
    ("attn_bert_free", None, c_p),
    ("attn_bert_get_config", ctypes.POINTER(BertConfig), c_p),
    ("attn_bert_set_dtype", st, c_p, c_int),
    ("attn_bert_get_dtype", c_int, c_p),
    ("attn_bert_forward", st, c_p, c_p, c_p, c_p, c_i64, c_i64, c_p),
    ("attn_bert_embed", st, c_p, c_p, c_p, c_p, c_i64, c_i64, c_p),
    ("attn_bert_attention", st, c_p, c_p, c_p, c_i64, c_i64, c_i64, c_p),
    ("attn_bert_attention_probe", st, c_p, c_p, c_p, c_i64, c_p, Hook, c_p, c_p),
]

lib = load("attn_nn", FUNCTIONS)

