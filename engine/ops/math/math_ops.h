/* Internal to the math op family: the op descriptors and the helpers their files share. */
#ifndef OCT_MATH_OPS_H
#define OCT_MATH_OPS_H

#include "../../op.h"
#include "ref/math_kernels.h"

/* Elementwise loops below this many elements per thread are not worth an OpenMP team. */
#define OCT_MATH_GRAIN 16384

/* Calls fn(arg, begin, end) over [0, n), split across up to ctx->threads threads (oct_parallel)
   when every thread gets at least `grain` items; otherwise runs it once on this thread. */
typedef void (*oct_math_range_fn)(const void *arg, int64_t begin, int64_t end);
void oct_math_parallel(const oct_run_ctx *ctx, int64_t n, int64_t grain, oct_math_range_fn fn, const void *arg);

/* Replaces n->params with a zeroed block of `size` bytes; NULL (err set) when out of memory. */
void *oct_math_new_params(oct_node *n, size_t size, octet_error *err);

/* Plans the broadcast of n_in bound tensors to out's shape. */
int oct_math_bcast(oct_bcast *bc, const oct_tensor *out, int n_in, const oct_tensor *const *in,
                   octet_error *err);

/* Shape inference for numpy broadcasting over n_in input values (n_in >= 1). */
int oct_math_infer_bcast(oct_graph *g, const oct_node *n, int n_in, int *rank, int64_t *dims,
                         octet_error *err);

/* True for int8, uint8, int32, int64. */
int oct_math_is_int(octet_dtype dt);
/* True for float32 and the integer dtypes above. */
int oct_math_is_numeric(octet_dtype dt);
/* Fails unless every present input has the dtype of input 0; returns that dtype or -1. */
int oct_math_same_dtype(oct_graph *g, const oct_node *n, int n_in, octet_error *err);

/* Runs a same-dtype (or, for Pow, mixed-dtype) broadcasting binary kernel on inputs 0 and 1
   into output 0, split across threads. */
int oct_math_run_binary(const oct_run_ctx *ctx, const oct_node *n, oct_binary_kind kind,
                        octet_error *err);

/* Product of dims[from, to); the caller has validated the shape. */
int64_t oct_math_span(const int64_t *dims, int from, int to);

extern const oct_op oct_op_relu, oct_op_leaky_relu, oct_op_sigmoid, oct_op_hard_sigmoid,
    oct_op_hard_swish, oct_op_tanh, oct_op_erf, oct_op_exp, oct_op_sqrt, oct_op_neg, oct_op_abs;
extern const oct_op oct_op_clip;
extern const oct_op oct_op_add, oct_op_sub, oct_op_mul, oct_op_div, oct_op_prelu, oct_op_pow;
extern const oct_op oct_op_equal, oct_op_greater, oct_op_less;
extern const oct_op oct_op_max, oct_op_min, oct_op_sum, oct_op_mean;
extern const oct_op oct_op_where;
extern const oct_op oct_op_softmax, oct_op_log_softmax;
extern const oct_op oct_op_reduce_mean, oct_op_reduce_sum, oct_op_reduce_max;
extern const oct_op oct_op_argmax;
extern const oct_op oct_op_topk;
extern const oct_op oct_op_cast;

#endif
