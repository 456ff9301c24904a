/* Conv's plan-time parameters, shared by its strategies (conv.c chooses, conv_*.c run). */
#ifndef OCT_CONV_H
#define OCT_CONV_H

#include "nn_common.h"

enum { CONV_DEPTHWISE, CONV_POINTWISE, CONV_IM2COL, CONV_WINOGRAD, CONV_DIRECT, CONV_FEW };

typedef struct {
    oct_conv_geom geom;
    int64_t N, C, M, group, Cg, Mg, K, P, in_vol, kvol;
    int mode;
    int64_t tile;   /* output pixels per im2col tile */
    int64_t mblock; /* output channels per work item (im2col mode) */
    int threads;    /* threads the workspace was sized for */
    int split_channels; /* pointwise: each thread owns a block of output channels (nn_feeds_channel_split) */
    size_t slice_bytes;
    float *packed_w; /* weights packed at plan time by the GEMM strategies, or NULL */
    void *dw_w;      /* weights prepared by the depthwise strategy, or NULL */
    void *wino;      /* the Winograd strategy's plan and transformed weights, or NULL */
    const struct oct_sgemm_arch *packed_arch; /* the GEMM arch packed_w is laid out for */
    size_t packed_group_floats;               /* floats of packed_w per group */
    void *direct;    /* the direct strategy's packed weights, or NULL */
    void *few;       /* the few-channel strategy's plan, or NULL */
    /* Pixels on the GEMM's broadcast side (layers with few output pixels, conv.c): Y^T = col^T W^T
       with the weights packed as B in packed_w; the unfolded panel is shared by the threads. */
    int pixels_as_a;
    int64_t slabs;      /* output-channel slabs per group, the threads' work items */
    size_t panel_bytes; /* the shared panel at the start of the workspace; slice_bytes per thread follow */
    int panel_per_thread; /* pointwise: each thread copies its own panel (then panel_bytes per thread) */
    int64_t ntiles;     /* im2col mode: pixel tiles per image, whole strips each (tile: the widest) */
    /* An SE excite fused in (engine/passes/fuse_se.c): input 3 holds one scale per input channel
       (per image when excite_per_image), the pointwise GEMM runs on a copy of the packed weights
       scaled along k, made per run in the workspace. */
    int excite, excite_per_image;
} conv_params;

/* The depthwise strategy (one input channel per group): conv_depthwise.c. Planning sets the
   node's workspace; it runs after the geometry fields of p are filled. */
int conv_plan_depthwise(oct_graph *g, oct_node *n, conv_params *p, octet_error *err);
void conv_run_depthwise(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                        const float *w, const float *bias, const float *res, float *y);

/* The Winograd F(4x4, 3x3) strategy for 2-D 3x3 stride-1 convolutions with constant weights:
   conv_winograd.c. fits() says whether to use it for this layer (OCTET_WINOGRAD=0/1 overrides the
   measured choice); plan() transforms the weights into p->wino and sets the workspace. */
int conv_winograd_fits(oct_graph *g, const oct_node *n, const conv_params *p);
int conv_plan_winograd(oct_graph *g, oct_node *n, conv_params *p, octet_error *err);
void conv_run_winograd(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                       const float *bias, const float *res, float *y);

/* The direct (no im2col) strategy for stride-1 layers with few channels: conv_direct.c. */
int conv_direct_fits(oct_graph *g, const oct_node *n, const conv_params *p);
int conv_plan_direct(oct_graph *g, oct_node *n, conv_params *p, octet_error *err);
void conv_run_direct(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                     const float *bias, const float *res, float *y);
void conv_direct_free(void *direct);

/* The few-channel strategy (image stems at stride 2): conv_few.c. fits() needs the geometry
   fields of p; plan() sets the workspace. */
int conv_few_fits(oct_graph *g, const oct_node *n, const conv_params *p);
void conv_few_free(void *few);
int conv_plan_few(oct_graph *g, oct_node *n, conv_params *p, octet_error *err);
void conv_run_few(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x, const float *w,
                  const float *bias, const float *res, float *y);

#endif
