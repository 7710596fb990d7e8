#include "problem.h"
void test_contract_masked_rows(void) {}
void test_contract_masked_never_read(void) {}
void test_contract_nan_propagation(void) {}
void test_contract_huge_logits(void) {}
void test_contract_sizes(void) {}
void test_contract_strided_views(void) {}
void test_contract_overlap(void) {}
void test_contract_determinism(void) {}
void test_weights_and_dropout_agree(void) {}
