/* Graph passes run by the planner (engine/plan.c) after shape inference and constant folding.
   A pass may rewrite nodes, add constant values and mark nodes dead; the planner then re-sorts,
   recounts uses and re-runs infer() on every live node, so a pass need not keep params in sync. */
#ifndef OCT_PASSES_H
#define OCT_PASSES_H

#include "../error.h"
#include "../graph.h"

/* Conv+BatchNormalization folded into the weights; Conv/ConvTranspose/Gemm/MatMul followed by an
   activation fused as the node's epilogue; residual Add(+Relu) fused into the producing conv. */
int oct_pass_fuse(oct_graph *g, octet_error *err);
/* After oct_pass_fuse and oct_pass_fuse_qlut: depthwise Conv -> GlobalAveragePool (an SE squeeze) as
   one fused node (fuse_se.c). */
int oct_pass_fuse_se(oct_graph *g, octet_error *err);
/* Before oct_pass_fuse_se: int8 QLinearConv -> activation table (QLinearLut, QLinearSigmoid, ...) as
   one QLinearConv applying the table to the bytes it stores (fuse_qlut.c). */
int oct_pass_fuse_qlut(oct_graph *g, octet_error *err);
/* Splits the fp32 fused SE nodes of a planned graph back into Conv and GlobalAveragePool, for a
   graph that is observed tensor by tensor and written out as ONNX (the calibration network). */
int oct_pass_unfuse_se(oct_graph *g, octet_error *err);

/* QDQ lowering (qdq_lower.c): DequantizeLinear -> float op -> QuantizeLinear patterns become int8
   nodes (QLinearConv, QLinearMatMul, QLinearAdd, ...; data movement runs on the int8 data itself).
   Runs after a first inference sweep that left DequantizeLinear of constants unfolded. Nodes that
   stay fp32 get why_fp32. Returns the number of rewrites (0: graph unchanged) or -1 with err set. */
int oct_pass_qdq_lower(oct_graph *g, octet_error *err);
/* false when the environment sets OCTET_NO_QDQ_LOWERING=1: QDQ models then run as written, every
   DequantizeLinear/QuantizeLinear in fp32 (the reference semantics the lowering must match). */
bool oct_pass_qdq_enabled(void);

/* Precision of a planned node for reports (qdq_report.c): "int8" (computes on 8-bit data), "fp32",
   "quant" (QuantizeLinear) or "dequant" (DequantizeLinear). */
const char *oct_node_precision(const oct_graph *g, const oct_node *n);
/* Whether the graph holds any 8-bit computation or Q/DQ node (a quantized model). */
bool oct_graph_is_quantized(const oct_graph *g);

#endif
