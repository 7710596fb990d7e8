/* list.h - every test of the one runner (attn_tests), by tier, in the order
 * they run. A tier whose library is not built (docs/testing.md) has its
 * tests reported as skipped, by name. To add a test: define it with
 * T_TEST(name) (or `void test_name(void)`) in the tier's folder of tests/
 * and add its name here. */
#ifndef ATTN_TEST_LIST_H
#define ATTN_TEST_LIST_H

#define T_TESTS_CORE(X) \
    X(status_strings) \
    X(version_string) \
    X(philox_known_answers) \
    X(dropout_keep_rate) \
    X(avx2_exp_accuracy) \
    X(avx512_exp_equals_avx2) \
    X(avx512bf16_dot_definition) \
    X(half_from_float) \
    X(half_to_float) \
    X(hand_computed) \
    X(ref64_finite_difference) \
    X(tiled_finite_difference) \
    X(fileio_inputs_must_be_regular) \
    X(fileio_outputs_refuse_special_files) \
    X(fileio_output_symlinks_followed) \
    X(fileio_atomic_replacement_failures) \
    X(fileio_path_limits) \
    X(fileio_out_of_memory) \
    X(cpu_features)

#define T_TESTS_OPS(X) \
    X(kernel_table_choice) \
    X(kernel_forcing) \
    X(kernel_env_variable) \
    X(ctx_describe) \
    X(ctx_buffers_rules) \
    X(ctx_buffers_reused) \
    X(tiled_fused_backward_bitwise) \
    X(argument_checks) \
    X(every_status_code) \
    X(out_of_memory) \
    X(contract_masked_rows) \
    X(contract_masked_never_read) \
    X(contract_nan_propagation) \
    X(contract_huge_logits) \
    X(contract_sizes) \
    X(contract_strided_views) \
    X(contract_overlap) \
    X(contract_determinism) \
    X(contract_huge_window) \
    X(weights_and_dropout_agree) \
    X(grid_vs_ref64) \
    X(grid_big_vs_ref64) \
    X(grid_decode_vs_ref64) \
    X(decode_group_rows_bitwise) \
    X(grid_fused_shares_vs_ref64) \
    X(fused_shares_tile_counts) \
    X(block_mask_patterns) \
    X(block_mask_bigbird_structure) \
    X(block_mask_from_fn) \
    X(block_mask_combine) \
    X(block_mask_bad_layout) \
    X(block_mask_call_shape) \
    X(block_mask_bits) \
    X(block_mask_grid_vs_ref64) \
    X(block_mask_decode_vs_ref64) \
    X(block_mask_hidden_never_read) \
    X(block_mask_hidden_never_read_global) \
    X(block_mask_weights) \
    X(block_mask_tile_counts) \
    X(block_mask_out_of_memory) \
    X(varlen_vs_padded) \
    X(varlen_weights) \
    X(varlen_bad_offsets) \
    X(varlen_one_run_equals_per_sequence_calls) \
    X(score_hand_computed) \
    X(score_ref_finite_difference) \
    X(score_contract_masked_rows) \
    X(score_contract_masked_never_read) \
    X(score_contract_sizes) \
    X(score_contract_huge) \
    X(score_contract_huge_window) \
    X(score_tanh_accuracy) \
    X(score_argument_checks) \
    X(score_out_of_memory) \
    X(score_grid_vs_ref64) \
    X(kernels_gemm_portable_vs_double) \
    X(kernels_gemm_avx2_vs_double) \
    X(kernels_gemm_avx512_vs_double) \
    X(kernels_gemm_bf16_portable_vs_double) \
    X(kernels_gemm_bf16_avx2_vs_double) \
    X(kernels_gemm_bf16_avx512_vs_double) \
    X(kernels_gemm_bf16_avx512bf16_vs_double) \
    X(kernels_gemm_bf16_amx_vs_double) \
    X(kernels_gemm_bitwise_across_threads_and_packing) \
    X(kernels_gemm_empty_products) \
    X(kernels_rows_portable_vs_double) \
    X(kernels_rows_avx2_vs_double) \
    X(kernels_rows_avx512_vs_double) \
    X(quant_dequantize_hand_computed) \
    X(quant_matmul_vs_twin) \
    X(quant_matmul_threads_bitwise) \
    X(quant_special_scales) \
    X(quant_argument_checks) \
    X(quant_out_of_memory)

#define T_TESTS_FORMATS(X) \
    X(json_decoded_strings_and_offsets) \
    X(json_depth_and_size_limits) \
    X(json_int64_extraction) \
    X(json_invalid_table) \
    X(json_large_object_lookup) \
    X(json_numbers_match_the_compiler) \
    X(json_out_of_memory) \
    X(json_utf8_rule_exhaustive) \
    X(json_valid_table) \
    X(json_writer_doubles_round_trip) \
    X(json_writer_measures_and_truncates) \
    X(json_writer_strings) \
    X(gguf_argument_checks) \
    X(gguf_byte_substitution_sweep) \
    X(gguf_corrupt_catalogue) \
    X(gguf_every_value_type) \
    X(gguf_load_from_file) \
    X(gguf_out_of_memory) \
    X(gguf_tensor_type_table) \
    X(gguf_tensors_and_conversion) \
    X(gguf_truncation_sweep) \
    X(gguf_versions_and_alignment) \
    X(safetensors_argument_checks) \
    X(safetensors_bitflip_sweep) \
    X(safetensors_corrupt_catalogue) \
    X(safetensors_corrupt_lengths_and_nesting) \
    X(safetensors_out_of_memory) \
    X(safetensors_read_f32_conversions) \
    X(safetensors_round_trip_every_dtype) \
    X(safetensors_save_golden_bytes) \
    X(safetensors_save_is_atomic) \
    X(safetensors_special_files) \
    X(safetensors_truncation_sweep) \
    X(safetensors_valid_edge_cases)

#define T_TESTS_TEXT(X) \
    X(bpe_added_tokens) \
    X(bpe_argument_checks) \
    X(bpe_config_catalogue) \
    X(bpe_decode) \
    X(bpe_from_gguf) \
    X(bpe_getters) \
    X(bpe_gguf_catalogue) \
    X(bpe_hand_computed) \
    X(bpe_out_of_memory) \
    X(bpe_pretokenize) \
    X(bpe_regex_and_digits) \
    X(bpe_stream_decode) \
    X(bpe_unicode_classes) \
    X(wordpiece_argument_checks) \
    X(wordpiece_byte_substitution_sweep) \
    X(wordpiece_corrupt_catalogue) \
    X(wordpiece_hand_computed) \
    X(wordpiece_load_from_file) \
    X(wordpiece_long_words_and_truncation) \
    X(wordpiece_out_of_memory) \
    X(wordpiece_reordered_marks_alignment) \
    X(wordpiece_truncation_sweep) \
    X(wordpiece_unicode_tables) \
    X(wordpiece_vocab_variants)

#define T_TESTS_NN(X) \
    X(grid_nn_linear) \
    X(grid_nn_embedding) \
    X(grid_nn_layernorm) \
    X(grid_nn_rmsnorm) \
    X(grid_nn_act) \
    X(grid_nn_rope) \
    X(grid_nn_sinusoidal) \
    X(grid_nn_dropout) \
    X(grid_nn_cross_entropy) \
    X(grid_nn_adamw) \
    X(grid_nn_clip) \
    X(grid_nn_lr) \
    X(grid_nn_mha) \
    X(mha_packed_equals_each_alone) \
    X(mha_packed_dropout_equals_padded) \
    X(mha_packed_bad_offsets) \
    X(grid_nn_gru_layer) \
    X(grid_nn_gru_cell) \
    X(gru_args) \
    X(gru_cell_backward_fd) \
    X(gru_layer_backward_fd_bidirectional_lengths) \
    X(gru_layer_padding_invariance) \
    X(layers_act_args) \
    X(layers_act_backward_fd_and_accumulate) \
    X(layers_act_forward_vs_double) \
    X(layers_cross_entropy_args) \
    X(layers_cross_entropy_fd_and_in_place) \
    X(layers_cross_entropy_hand_computed) \
    X(layers_dropout_args) \
    X(layers_dropout_pure_function_of_offset) \
    X(layers_dropout_rate_and_masks) \
    X(layers_embedding) \
    X(layers_layernorm_backward_fd_and_accumulate) \
    X(layers_layernorm_forward_vs_double) \
    X(layers_linear_args) \
    X(layers_linear_backward_fd_and_accumulate) \
    X(layers_linear_forward_vs_double) \
    X(layers_norm_args) \
    X(layers_outputs_stay_in_bounds) \
    X(layers_rmsnorm_backward_fd_and_accumulate) \
    X(layers_rmsnorm_forward_vs_double) \
    X(layers_rope) \
    X(layers_sinusoidal) \
    X(optim_adamw_args) \
    X(optim_adamw_two_steps_hand_computed) \
    X(optim_clip_grad_norm) \
    X(optim_model_update) \
    X(optim_lr_schedules) \
    X(probe_weights_vs_naive)

#define T_TESTS_MODELS(X) \
    X(beam_search_beats_greedy) \
    X(bert_accepted_variants) \
    X(bert_argument_checks) \
    X(bert_attention_maps_vs_naive_double) \
    X(bert_bitwise_across_thread_counts) \
    X(bert_bf16_vs_naive_double) \
    X(bert_config_catalogue) \
    X(bert_corrupt_weight_catalogue) \
    X(bert_forward_vs_naive_double) \
    X(bert_out_of_memory) \
    X(bert_padding_invariance) \
    X(bert_probe_errors) \
    X(bert_probe_grads_fd) \
    X(bert_sentence_config_and_missing_files) \
    X(bert_truncated_weights) \
    X(checkpoint_corrupt_catalogue) \
    X(checkpoint_overwrite_is_atomic) \
    X(checkpoint_round_trip) \
    X(checkpoint_truncation_sweep) \
    X(checkpointing_same_gradients_less_memory) \
    X(config_seq2seq_table) \
    X(config_transformer_table) \
    X(generate_cache_matches_full_forward) \
    X(llama_load_tiny) \
    X(llama_forward_vs_naive_float64) \
    X(llama_kv_cache_equals_recompute) \
    X(llama_threads_bitwise) \
    X(llama_half_cache) \
    X(llama_session_rules) \
    X(llama_sampling_rules) \
    X(llama_chat_format) \
    X(llama_generate_matches_forward_and_sample) \
    X(llama_corrupt_catalogue) \
    X(llama_truncation_sweep) \
    X(llama_out_of_memory) \
    X(grid_models_transformer) \
    X(seq2seq_args) \
    X(seq2seq_backward_fd) \
    X(seq2seq_checkpoint_corrupt_catalogue) \
    X(seq2seq_checkpoint_round_trip) \
    X(seq2seq_checkpoint_truncation_sweep) \
    X(seq2seq_generate_matches_teacher_forcing) \
    X(seq2seq_learns_to_copy) \
    X(seq2seq_out_of_memory) \
    X(seq2seq_padding_invariance) \
    X(seq2seq_probe_grads_fd) \
    X(transformer_packed_equals_padded) \
    X(transformer_packed_dropout_checkpointing) \
    X(transformer_packed_bad_offsets) \
    X(transformer_probe_errors) \
    X(transformer_probe_grads_fd) \
    X(transformer_probe_sites_and_shapes)

#define T_TESTS_VIZ(X) \
    X(viz_argument_errors) \
    X(viz_cell_sizes) \
    X(viz_colours_rise_with_value) \
    X(viz_font_table) \
    X(viz_labels) \
    X(viz_out_of_memory) \
    X(viz_png_equals_rgb) \
    X(viz_png_io_errors) \
    X(viz_small_cells_thin_labels) \
    X(viz_title_fits)

#define T_TESTS_EXPLAIN(X) \
    X(explain_argument_checks) \
    X(explain_base64_floats) \
    X(explain_html_escapes) \
    X(explain_json_escapes) \
    X(explain_out_of_memory) \
    X(explain_page_reads_back) \
    X(explain_rollout_vs_double_product) \
    X(explain_rules_hand_computed) \
    X(explain_write_errors)

#define T_TESTS_APPS(X) \
    X(charvocab_args) \
    X(charvocab_ids_and_labels) \
    X(charvocab_round_trips) \
    X(checkpoint_resume_bit_exact) \
    X(dates_calendar_args) \
    X(dates_packed_batches_equal_padded) \
    X(dates_calendar_facts) \
    X(dates_every_pair) \
    X(dates_examples_100k) \
    X(dates_format_table_and_args) \
    X(dates_known_sources) \
    X(dates_print_examples) \
    X(dates_split_draws) \
    X(gru_dates_batches_training_translation) \
    X(lines_file_must_be_regular) \
    X(lines_reader_limits_and_errors) \
    X(train_cfg_from_meta_checks) \
    X(train_meta_by_key)

/* Ring attention under mpirun (built with MPI only). */
#define T_TESTS_DIST(X) \
    X(ring_ranks_vs_single_process) \
    X(ring_cli_check) \
    X(ring_rank_killed_ends_job)

/* The tests that split their work between the runner's workers (--jobs
 * N): the grids (their configurations) and the longest others (their
 * parts). Each runs in every worker, which takes the parts x with
 * t_mine(x). Every other test runs in one worker. */
#define T_TESTS_SHARDED(X) \
    X(grid_vs_ref64) \
    X(grid_big_vs_ref64) \
    X(grid_decode_vs_ref64) \
    X(grid_fused_shares_vs_ref64) \
    X(block_mask_grid_vs_ref64) \
    X(block_mask_decode_vs_ref64) \
    X(block_mask_tile_counts) \
    X(score_grid_vs_ref64)

#endif /* ATTN_TEST_LIST_H */
