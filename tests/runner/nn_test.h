/* nn_test.h - what the toolkit's tests include: the runner's asserts
 * (test.h) and the toolkit's headers. */
#ifndef ATTN_NN_TEST_H
#define ATTN_NN_TEST_H

#include "test.h"

#include <attn/nn.h>
#include <attn/safetensors.h>
#include <attn/transformer.h>

#endif /* ATTN_NN_TEST_H */
