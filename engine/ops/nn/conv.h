/* Conv's plan-time parameters, shared by its strategies (conv.c chooses, conv_*.c run). */
#ifndef OCT_CONV_H
#define OCT_CONV_H

#include "nn_common.h"

enum { CONV_DEPTHWISE, CONV_POINTWISE, CONV_IM2COL };

typedef struct {
    oct_conv_geom geom;
    int64_t N, C, M, group, Cg, Mg, K, P, in_vol, kvol;
    int mode;
    int64_t tile;   /* output pixels per im2col tile */
    int64_t mblock; /* output channels per work item (im2col mode) */
    int threads;    /* threads the workspace was sized for */
    size_t slice_bytes;
    float *packed_w; /* weights packed at plan time by the GEMM strategies, or NULL */
    void *dw_w;      /* weights prepared by the depthwise strategy, or NULL */
} conv_params;

/* The depthwise strategy (one input channel per group): conv_depthwise.c. Planning sets the
   node's workspace; it runs after the geometry fields of p are filled. */
int conv_plan_depthwise(oct_graph *g, oct_node *n, conv_params *p, octet_error *err);
void conv_run_depthwise(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                        const float *w, const float *bias, const float *res, float *y);

#endif
