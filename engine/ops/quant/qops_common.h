/* Helpers of the table-driven and element-wise int8 ops (QLinearAdd/Mul/Concat/Sigmoid/...):
   checking per-tensor scale and zero-point inputs, reading them as plan-time constants, and
   building a requantization lookup table from a float function. */
#ifndef OCT_QOPS_COMMON_H
#define OCT_QOPS_COMMON_H

#include <stdint.h>

#include "quant_common.h"
#include "ref/qops_kernels.h"

/* A per-tensor quantization: real = (q - zp) * scale. */
typedef struct {
    float scale;
    int32_t zp;
} qops_qparams;

/* Checks that n has min..max input slots, the slots set in the bit mask `required` present. */
int qops_check_inputs(const oct_node *n, int min, int max, unsigned required, octet_error *err);

/* Checks the scale input `si` (float32, one value) and the optional zero point `zi` (one value of
   dtype `t`, the data's type); zi < 0 means the op has no such slot. `what` names the tensor. */
int qops_check_qparams(oct_graph *g, const oct_node *n, int si, int zi, octet_dtype t, const char *what,
                       octet_error *err);
/* Reads a checked scale / zero-point pair as constants at plan time (graph inputs are bound by
   value, see oct_const_input); fails unless the scale is finite and positive. */
int qops_const_qparams(oct_graph *g, const oct_node *n, int si, int zi, const char *what, qops_qparams *out,
                       octet_error *err);
/* The same pair read at run time from the bound tensors. */
qops_qparams qops_run_qparams(const oct_run_ctx *ctx, const oct_node *n, int si, int zi);
/* Fails unless the scale of a run-time pair is finite and positive. */
int qops_check_scale_value(float scale, const char *what, octet_error *err);

/* table[b] = Q_y(f(DQ_x(b))) for every byte b: DQ_x(b) = (float)(value(b) - x.zp) * x.scale in
   float32 (as DequantizeLinear computes it), f in double, then divided by y.scale in double,
   rounded half to even, offset by y.zp and clamped to [qmin, qmax]. */
typedef double (*qops_fn)(double x, const void *ctx);
void qops_build_table(int x_s8, qops_qparams x, int y_s8, qops_qparams y, int32_t qmin, int32_t qmax, qops_fn f,
                      const void *ctx, uint8_t table[256]);

/* The 256-byte table of a table-driven activation node (QLinearLut, QLinearSigmoid,
   QLinearLeakyRelu; qlinear_lut.c): checks the node's inputs and attributes and builds it. Also the
   output table a QLinearConv applies when such a node is fused into it (engine/passes/fuse_qlut.c). */
int qops_lut_table(oct_graph *g, const oct_node *n, uint8_t table[256], octet_error *err);

/* The chunk of n elements that thread piece i of `pieces` handles, in multiples of 64. */
void qops_split(int64_t n, int64_t pieces, int64_t i, int64_t *begin, int64_t *end);

#endif
