/* Reference kernels of the math op family: elementwise (with numpy broadcasting), reductions,
   softmax, argmax, top-k and casts. Pure functions over pointers and sizes; the op files in
   engine/ops/math adapt graph tensors to them and split the work across threads by ranges. */
#ifndef OCT_MATH_KERNELS_H
#define OCT_MATH_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "octet.h"

/* ---- unary ---------------------------------------------------------------------------------- */

typedef enum {
    OCT_UN_RELU = 0,
    OCT_UN_LEAKY_RELU,   /* alpha: slope for x < 0 */
    OCT_UN_CLIP,         /* alpha: min, beta: max; min(max(x, min), max) */
    OCT_UN_SIGMOID,
    OCT_UN_HARD_SIGMOID, /* clamp(alpha*x + beta, 0, 1) */
    OCT_UN_HARD_SWISH,
    OCT_UN_TANH,
    OCT_UN_ERF,
    OCT_UN_EXP,
    OCT_UN_SQRT,
    OCT_UN_NEG,
    OCT_UN_ABS
} oct_unary_kind;

/* y[i] = f(x[i]) for i in [0, n). x and y may alias. */
void oct_ref_unary_f32(oct_unary_kind k, float alpha, float beta, const float *x, float *y, size_t n);
/* Integer variants of Relu, Neg, Abs and Clip (lo/hi bound Clip) for int8, uint8, int32, int64.
   Returns -1 for a kind or dtype that has no integer meaning. */
int oct_ref_unary_int(oct_unary_kind k, octet_dtype dt, int64_t lo, int64_t hi, const void *x,
                      void *y, size_t n);

/* ---- broadcasting --------------------------------------------------------------------------- */

#define OCT_BCAST_MAX_IN 3

/* An output shape and, per input, element strides into it (0 along broadcast dims). Adjacent dims
   that every input walks the same way are merged, so a same-shape op is one flat run and a
   [1,C,1,1] operand of an NCHW tensor becomes [N, C, H*W] with a scalar inner run. */
typedef struct {
    int rank;                 /* >= 1 after planning (a scalar becomes [1]) */
    int n_in;
    int64_t dims[OCTET_MAX_RANK];
    int64_t strides[OCT_BCAST_MAX_IN][OCTET_MAX_RANK];
} oct_bcast;

/* Plans the walk of n_in inputs (ranks[i], dims[i]) broadcast to the output shape. Returns -1 if
   an input does not broadcast to it (the caller has checked shapes, so this is a guard). */
int oct_bcast_plan(oct_bcast *bc, int out_rank, const int64_t *out_dims, int n_in, const int *ranks,
                   const int64_t *const *dims);
/* Number of output elements of a plan. */
int64_t oct_bcast_numel(const oct_bcast *bc);

typedef enum {
    OCT_BIN_ADD = 0,
    OCT_BIN_SUB,
    OCT_BIN_MUL,
    OCT_BIN_DIV,   /* integer division truncates toward zero; the caller rejects zero divisors */
    OCT_BIN_POW,
    OCT_BIN_MAX,
    OCT_BIN_MIN,
    OCT_BIN_PRELU, /* a < 0 ? a*b : a */
    OCT_BIN_EQUAL, /* comparisons write bool (one byte, 0 or 1) */
    OCT_BIN_GREATER,
    OCT_BIN_LESS
} oct_binary_kind;

/* y[o] = a[.] op b[.] for output elements o in [begin, end), both inputs of dtype dt.
   Returns -1 if the kind is not defined for dt (e.g. Pow on bool). */
int oct_ref_binary(oct_binary_kind k, octet_dtype dt, const oct_bcast *bc, const void *a,
                   const void *b, void *y, int64_t begin, int64_t end);
/* Pow with base and exponent of different dtypes; the result has the base's dtype. */
int oct_ref_pow_mixed(octet_dtype base_dt, octet_dtype exp_dt, const oct_bcast *bc, const void *a,
                      const void *b, void *y, int64_t begin, int64_t end);
/* y[o] = x[.] broadcast (one input in bc), elements of elsize bytes (1, 4 or 8). */
void oct_ref_bcast_copy(size_t elsize, const oct_bcast *bc, const void *x, void *y, int64_t begin,
                        int64_t end);
/* out[o] = cond[.] ? x[.] : y[.] (three inputs in bc: cond, x, y). */
void oct_ref_where(size_t elsize, const oct_bcast *bc, const uint8_t *cond, const void *x,
                   const void *y, void *out, int64_t begin, int64_t end);

/* ---- reductions ----------------------------------------------------------------------------- */

typedef enum { OCT_RED_SUM = 0, OCT_RED_MEAN, OCT_RED_MAX } oct_reduce_kind;

/* x viewed as [outer, red, inner] reduced over red into y [outer, inner]; rows [o0, o1) of outer.
   An empty reduction gives 0 (sum), NaN (mean) or the lowest value (max). */
int oct_ref_reduce_rows(oct_reduce_kind k, octet_dtype dt, const void *x, void *y, int64_t o0,
                        int64_t o1, int64_t red, int64_t inner);

/* The general case: x has `rank` dims, reduced[d] marks the reduced ones; y holds the kept dims
   in order. Computes output elements [begin, end). */
int oct_ref_reduce_general(oct_reduce_kind k, octet_dtype dt, const void *x, void *y, int rank,
                           const int64_t *dims, const uint8_t *reduced, int64_t begin, int64_t end);

/* Softmax (or log-softmax) of x viewed as [outer, len, inner] along len, rows [o0, o1). */
void oct_ref_softmax_f32(const float *x, float *y, int64_t o0, int64_t o1, int64_t len,
                         int64_t inner, int log_softmax);

/* Index of the maximum along len of x viewed as [outer, len, inner], rows [o0, o1); ties give the
   first index, or the last with select_last. */
int oct_ref_argmax(octet_dtype dt, const void *x, int64_t *y, int64_t o0, int64_t o1, int64_t len,
                   int64_t inner, int select_last);

/* Top k along len of x viewed as [outer, len, inner]: values (dtype dt) and int64 indices, both
   [outer, k, inner], sorted (largest first, or smallest first), ties by lower index; indices may
   be NULL.
   scratch holds oct_topk_scratch_bytes(len) bytes. */
size_t oct_topk_scratch_bytes(int64_t len);
int oct_ref_topk(octet_dtype dt, const void *x, void *values, int64_t *indices, int64_t outer,
                 int64_t len, int64_t inner, int64_t k, int largest, void *scratch);

/* ---- casts ---------------------------------------------------------------------------------- */

/* Converts n elements. Float to integer truncates toward zero and saturates at the target's
   range (NaN gives 0); integer to narrower integer wraps; anything to bool is x != 0. */
int oct_ref_cast(octet_dtype from, octet_dtype to, const void *x, void *y, size_t n);

#endif
