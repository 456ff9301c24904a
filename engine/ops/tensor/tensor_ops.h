/* Internal header of the tensor op family (data movement and shapes): the op objects that
   list.c registers and helpers the ops share. Every op here moves elements by their size, so
   float32, uint8, int8, int32, int64 and bool all go through the same code. */
#ifndef OCT_TENSOR_OPS_H
#define OCT_TENSOR_OPS_H

#include <stdbool.h>
#include <string.h>

#include "../../op.h"

extern const oct_op oct_op_reshape, oct_op_flatten, oct_op_squeeze, oct_op_unsqueeze,
    oct_op_identity, oct_op_dropout, oct_op_transpose, oct_op_concat, oct_op_split, oct_op_slice,
    oct_op_gather, oct_op_pad, oct_op_resize, oct_op_upsample, oct_op_shape, oct_op_constant,
    oct_op_constant_of_shape, oct_op_expand, oct_op_tile;

/* Tensors past this many bytes are moved by several threads. */
#define TENSOR_PARALLEL_BYTES ((size_t)1 << 18)

/* The default-domain opset the graph imports; a hand-built graph without one counts as the
   newest opset the family implements. */
int tensor_opset(const oct_graph *g);

/* Replaces n->params (re-infer after a pass must not leak the old ones). */
void tensor_set_params(oct_node *n, void *params);

/* Checks that a shape computed by an op is valid: dims >= 0, rank within OCTET_MAX_RANK, and an
   element count whose byte size cannot overflow. `what` names the tensor in the message. */
int tensor_check_shape(int rank, const int64_t *dims, octet_dtype dtype, const char *what,
                       octet_error *err);

/* Fails unless the dtype is one octet stores (float32, uint8, int8, int32, int64, bool). */
int tensor_check_dtype(octet_dtype dtype, const char *what, octet_error *err);

/* Writes dims as "(2, 3, 4)" into buf; returns buf, for messages. */
const char *tensor_format_dims(char *buf, size_t size, int rank, const int64_t *dims);

/* Writes v as one element of dtype dt (saturating, NaN to 0 for integers), for fill values that
   ONNX gives as float attributes. */
void tensor_from_float(float v, octet_dtype dt, void *out);

/* Product of dims[from..to). */
int64_t tensor_prod(const int64_t *dims, int from, int to);

/* Reads the axes of Squeeze/Unsqueeze-style ops: from input `input` when the opset is at least
   `input_since`, else from attribute `attr`. Returns the count, -1 when absent (err untouched),
   -2 on error. */
int tensor_read_axes(oct_graph *g, const oct_node *n, int input, int input_since, const char *attr,
                     int64_t *axes, int max, octet_error *err);

/* Normalises count axes against rank in place and rejects duplicates. */
int tensor_norm_axes(int64_t *axes, int count, int rank, octet_error *err);

/* memcpy that splits large copies over threads; a no-op when dst == src. */
void tensor_copy(const oct_run_ctx *ctx, void *dst, const void *src, size_t bytes, int threads);

/* Copies n elements of esize bytes from src (stride src_step elements) to contiguous dst. */
void tensor_gather_elems(void *dst, const void *src, int64_t n, size_t esize, int64_t src_step);

/* Fills n elements of esize bytes with the element at value. */
void tensor_fill_elems(void *dst, const void *value, int64_t n, size_t esize);

/* Copies a strided view of src into contiguous dst: dst element (i0..ik) comes from
   src + sum(i_d * src_strides[d]) elements. Strides may be 0 (broadcast) or negative (reversed).
   rank <= TENSOR_VIEW_MAX_RANK; adjacent dims that are contiguous in src are merged first. */
#define TENSOR_VIEW_MAX_RANK (2 * OCTET_MAX_RANK)
void tensor_view_copy(const oct_run_ctx *ctx, void *dst, const void *src, size_t esize, int rank,
                      const int64_t *dims, const int64_t *src_strides, int threads);

/* Number of threads an op may use for `bytes` of work: 1 for small tensors. */
static inline int tensor_threads(const oct_run_ctx *ctx, size_t bytes) {
    int t = ctx->threads > 0 ? ctx->threads : 1;
    return bytes >= TENSOR_PARALLEL_BYTES ? t : 1;
}

/* Shared run of the ops whose output is the input's bytes under another shape
   (Reshape, Flatten, Squeeze, Unsqueeze, Identity). */
int tensor_run_copy(const oct_run_ctx *ctx, const oct_node *n, octet_error *err);

#endif
