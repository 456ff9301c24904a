/* Helpers shared by the QDQ lowering files (qdq_*.c): reading the parameters of QuantizeLinear and
   DequantizeLinear nodes, walking producers and consumers, adding constants, and rewriting a node
   in place into its int8 form. Everything works on value and node indices, since adding values
   may move g->values. */
#ifndef OCT_QDQ_COMMON_H
#define OCT_QDQ_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "passes.h"

/* The quantization parameters of a QuantizeLinear or DequantizeLinear node. */
typedef struct {
    int node;          /* the Q or DQ node */
    int q;             /* the quantized side: DQ's input, Q's output */
    int f;             /* the float side: DQ's output, Q's input */
    int scale, zp;     /* value indices; zp is -1 when absent (0 of type qtype) */
    octet_dtype qtype; /* uint8 or int8 (int32 for a bias DequantizeLinear) */
    int64_t count;     /* scale elements: 1 per tensor, else one per index of `axis` */
    int axis;          /* normalised, meaningful when count > 1 */
} qdq_param;

/* A matcher's answer: the pattern became int8 nodes, or it did not (with a reason). */
enum { QDQ_KEPT = 0, QDQ_LOWERED = 1 };

bool qdq_is(const oct_node *n, const char *type);   /* live, default domain, of this type */
int qdq_producer(const oct_graph *g, int v);        /* live producing node of value v, or -1 */
/* Live nodes reading v (an input slot or the epilogue residual); writes up to max into who. */
int qdq_consumers(const oct_graph *g, int v, int *who, int max);
/* v is read by node `reader` only, and is not a graph output. */
bool qdq_only_reader(const oct_graph *g, int v, int reader);

/* Reads the parameters of Q or DQ node `node`. Returns 1, or 0 with *why (scale or zero point not
   constant, a scale that is zero, negative or not finite, blocked quantization). */
int qdq_read(const oct_graph *g, int node, qdq_param *p, const char **why);
/* Value v comes from a DequantizeLinear (1) or not (0, with *why). activation: the DQ must be per
   tensor over uint8/int8 data. */
int qdq_from_dq(const oct_graph *g, int v, bool activation, qdq_param *p, const char **why);
/* Value v's only reader is a per-tensor 8-bit QuantizeLinear (1), or not (0, with *why). */
int qdq_to_q(const oct_graph *g, int v, qdq_param *p, const char **why);

/* Scale element i (0 when per tensor) and zero point element i (0 when absent). */
float qdq_scale_at(const oct_graph *g, const qdq_param *p, int64_t i);
int32_t qdq_zp_at(const oct_graph *g, const qdq_param *p, int64_t i);
/* Same per-tensor scale (bit for bit), zero point and type. */
bool qdq_same_params(const oct_graph *g, const qdq_param *a, const qdq_param *b);
/* The zero-point value of p, creating a zero constant of p->qtype when it is absent (-1: error). */
int qdq_zp_value(oct_graph *g, qdq_param *p, octet_error *err);
/* QuantizeLinear of one float: rint(x / scale) + zp in float32, saturated to the type's range. */
int32_t qdq_quantize(float x, float scale, int32_t zp, octet_dtype t);
int32_t qdq_type_min(octet_dtype t);
int32_t qdq_type_max(octet_dtype t);

/* A new constant value named base+suffix owning data (taken over, also on failure). */
int qdq_add_const(oct_graph *g, const char *base, const char *suffix, octet_dtype dt, int rank,
                  const int64_t *dims, void *data, octet_error *err);
/* Turns node ni into op (domain, type) reading the n_in values in[] and writing `out` as its only
   output; its attributes stay. The op and params are reset: the planner re-infers. */
int qdq_rewrite(oct_graph *g, int ni, const char *domain, const char *type, int n_in, const int *in,
                int out, octet_error *err);
/* Appends "+what" to node ni's fused note. */
int qdq_note_fused(oct_graph *g, int ni, const char *what, octet_error *err);
/* Sets (adds or replaces) an attribute of node ni. */
int qdq_set_attr_float(oct_graph *g, int ni, const char *name, float v, octet_error *err);
int qdq_set_attr_int(oct_graph *g, int ni, const char *name, int64_t v, octet_error *err);
int qdq_set_attr_string(oct_graph *g, int ni, const char *name, const char *v, octet_error *err);
/* An int8 op of that name is registered. */
bool qdq_have_op(const char *domain, const char *type);

/* The matchers. qi is a live QuantizeLinear whose input is produced by node pi; each returns
   QDQ_LOWERED, QDQ_KEPT with *why (and *blame, the node the reason belongs to), or -1 on error.
   qdq_gemm.c: Conv, ConvTranspose, MatMul, Gemm, optionally followed by Relu or Clip. */
int qdq_lower_gemm(oct_graph *g, int qi, int pi, const char **why, int *blame, octet_error *err);
/* qdq_eltwise.c: Add, Mul, Concat, GlobalAveragePool, AveragePool, InstanceNormalization and
   element-wise unary functions (as a lookup table). */
int qdq_lower_eltwise(oct_graph *g, int qi, int pi, const char **why, int *blame, octet_error *err);
/* qdq_movement.c: data movement between a DQ and a Q of the same parameters, and DQ->Q. */
int qdq_lower_movement(oct_graph *g, int qi, int pi, const char **why, int *blame, octet_error *err);
bool qdq_is_movement(const oct_node *n);
bool qdq_is_gemm_like(const oct_node *n);

#endif
