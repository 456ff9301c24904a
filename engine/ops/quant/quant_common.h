/* Helpers shared by the quantized ops: checking scale/zero-point inputs, reading them at run
   time, the integer ranges of the 8-bit types, and the kernel set the ops use. */
#ifndef OCT_QUANT_COMMON_H
#define OCT_QUANT_COMMON_H

#include <stdint.h>

#include "../../op.h"
#include "ref/quant_kernels.h"

/* The int8 kernel set in use. Ops store the set they packed weights with in their params. */
const oct_quant_kernel_set *quant_kernels(void);

static inline int quant_is_8bit(octet_dtype t) { return t == OCTET_UINT8 || t == OCTET_INT8; }
static inline int32_t quant_min(octet_dtype t) { return t == OCTET_INT8 ? -128 : 0; }
static inline int32_t quant_max(octet_dtype t) { return t == OCTET_INT8 ? 127 : 255; }

/* Requires input i to have one of the listed dtypes (what names it in the message). */
int quant_require_dtype(oct_graph *g, const oct_node *n, int i, const char *what, octet_dtype a,
                        octet_dtype b, octet_error *err);

/* Checks a scale or zero-point input i: dtype `dtype`, and either one element (rank 0 or all
   dims 1: per tensor) or, when channels >= 0, a 1-D tensor of `channels` elements (per channel,
   `channel_what` says of what). Returns the element count (1 or channels) or -1 with err set. */
int64_t quant_check_param(oct_graph *g, const oct_node *n, int i, const char *what, octet_dtype dtype,
                          int64_t channels, const char *channel_what, octet_error *err);

/* Element j of a zero-point tensor (uint8, int8 or int32); 0 when t is NULL. */
static inline int32_t quant_zp_at(const oct_tensor *t, int64_t j) {
    if (!t) return 0;
    switch (t->dtype) {
    case OCTET_UINT8: return ((const uint8_t *)t->data)[j];
    case OCTET_INT8: return ((const int8_t *)t->data)[j];
    case OCTET_INT32: return ((const int32_t *)t->data)[j];
    default: return 0;
    }
}

/* Optional input i as a tensor, or NULL when the slot is empty. */
static inline const oct_tensor *quant_opt_in(const oct_run_ctx *c, const oct_node *n, int i) {
    return oct_node_has_input(n, i) ? oct_in(c, n, i) : NULL;
}

/* Fills mult[r] = (s_x * s_w[r]) / s_y in float32 for r < count (s_w per channel when
   w_count > 1); fails naming the channel when a multiplier is not finite (e.g. y_scale 0). */
int quant_multipliers(float s_x, const float *s_w, int64_t w_count, float s_y, int64_t count,
                      float *mult, octet_error *err);

/* Checks that n's fused epilogue is one an 8-bit producer applies by narrowing its output clamp:
   none, Relu or Clip, and no residual. */
int quant_check_epilogue(const oct_node *n, octet_error *err);
/* Narrows [*qmin, *qmax] by n's fused Relu or Clip(alpha, beta) so that the requantized result is
   Q(act(x)): since rounding is monotonic, Q(max(x, lo)) = max(Q(x), zp + rint(lo / y_scale)), the
   division in float32 as QuantizeLinear does it. */
void quant_act_clamp(const oct_node *n, float y_scale, int32_t y_zp, int32_t *qmin, int32_t *qmax);

/* Rounds n up to a multiple of 64 bytes; 0 on overflow. */
size_t quant_align64(size_t n);

#endif
