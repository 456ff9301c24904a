/* Helpers shared by the test programs. */
#ifndef OCT_TEST_UTIL_H
#define OCT_TEST_UTIL_H

#include <stdio.h>

/* The shared directory (onnx-node-tests, data), from OCTET_SHARED or the build option. */
const char *test_shared_dir(void);
/* The source root, from OCTET_SOURCE_ROOT (or "."). */
const char *test_source_root(void);
/* Writes bytes to a fresh temp file; returns its malloc'ed path. */
char *test_write_temp(const void *bytes, size_t n, const char *suffix);

#endif
