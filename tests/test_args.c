#include "problem.h"
void test_argument_checks(void) {}
void test_every_status_code(void) {}
void test_out_of_memory(void) {}
