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

#endif
