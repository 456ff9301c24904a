/* Helpers shared by the test programs. */
#ifndef OCT_TEST_UTIL_H
#define OCT_TEST_UTIL_H

#include <stdio.h>

#include "engine/graph.h"
#include "kernels/kernels.h"
#include "kernels/ref/quant_kernels.h"

/* The shared directory (onnx-node-tests, data), from OCTET_SHARED or the build option. */
const char *test_shared_dir(void);
/* The source root, from OCTET_SOURCE_ROOT (or "."). */
const char *test_source_root(void);
/* Writes bytes to a fresh temp file; returns its malloc'ed path. */
char *test_write_temp(const void *bytes, size_t n, const char *suffix);

/* Selects the kernels of ISA level isa as OCTET_ISA does for users (tests force every level the CPU
   supports this way), and back to the level the CPU would pick. */
void test_use_isa(oct_isa isa);
void test_default_isa(void);

/* Hand-built graphs for op tests. */
int64_t test_numel(int rank, const int64_t *dims);
/* Appends v to a malloc'ed int array of *n entries. */
void test_push_int(int **arr, int *n, int v);
/* A graph input of this dtype and shape (added to g->inputs); returns its value index. */
int test_graph_input(oct_graph *g, const char *name, octet_dtype dt, int rank, const int64_t *dims);
/* A constant holding a copy of data; returns its value index. */
int test_graph_const(oct_graph *g, const char *name, octet_dtype dt, int rank, const int64_t *dims,
                     const void *data);
/* A float32 scalar constant. */
int test_graph_f32(oct_graph *g, const char *name, float v);
/* A node of op (domain, type) reading in[0..n_in), with one fresh output value named
   "<type>_<node>_out"; returns the node index. */
int test_graph_node(oct_graph *g, const char *domain, const char *type, int n_in, const int *in);
/* The same node; returns its output value. (Not g->nodes[test_graph_node(...)]: adding a node may
   move g->nodes, and C leaves the order of those two evaluations open.) */
int test_graph_node_out(oct_graph *g, const char *domain, const char *type, int n_in, const int *in);
/* Attributes appended to node k. test_attr_ints_fill gives n copies of v (n = 0: a plain int). */
void test_attr_float(oct_graph *g, int k, const char *name, float v);
void test_attr_string(oct_graph *g, int k, const char *name, const char *v);
void test_attr_ints_fill(oct_graph *g, int k, const char *name, int n, int64_t v);
/* An INTS attribute holding v[0..n). */
void test_attr_ints(oct_graph *g, int k, const char *name, int n, const int64_t *v);

/* A random requantization of `rows` rows for the int8 kernel tests, drawn with the caller's
   rin(lo, hi): multipliers in (0, 1e5 * unit], biases in [-5e4, 5e4] (stored only with_bias),
   the output zero point of the type, and with narrow a clamp of half the range from it.
   scale and bias hold rows values; q points at them. */
void test_random_requant(int (*rin)(int lo, int hi), int rows, float unit, int per_row, int with_bias, int out_s8,
                         int narrow, float *scale, int32_t *bias, oct_requant *q);

#endif
