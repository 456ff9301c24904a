/* QLinearConv / ConvInteger plan-time parameters and run-time values, shared by the
   strategies (qconv.c plans and runs the GEMM one, qconv_depthwise.c the depthwise one). */
#ifndef OCT_QCONV_H
#define OCT_QCONV_H

#include "../nn/nn_common.h"
#include "qpanel_isa.h"
#include "quant_common.h"

enum { QCONV_DEPTHWISE, QCONV_GEMM, QCONV_DIRECT, QCONV_LANES };

/* Input slots of the two ops; -1 where an op has no such input. */
typedef struct {
    int x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias;
} qconv_slots;

static const qconv_slots QLINEAR_SLOTS = {0, 1, 2, 3, 4, 5, 6, 7, 8};
static const qconv_slots INTEGER_SLOTS = {0, -1, 2, 1, -1, 3, -1, -1, -1};

typedef struct {
    int qlinear; /* QLinearConv: requantized 8-bit output; else ConvInteger: int32 output */
    qconv_slots in;
    oct_conv_geom geom;
    int64_t N, C, M, group, Cg, Mg, K, P, in_vol, kvol;
    int x_s8, w_u8, out_s8;
    int64_t w_scale_count, w_zp_count;
    int mode;
    int64_t tile;     /* output pixels per work item (GEMM: the most any tile holds) */
    int64_t ntiles;   /* GEMM: pixel tiles per image and group, cut by qconv_gemm_tile_start */
    int64_t mblock;   /* output channels per work item (GEMM) */
    int split_channels; /* GEMM: each thread owns a block of output channels over all pixels */
    int threads;
    size_t mult_bytes, head_bytes, col_bytes, slice_bytes;
    size_t sums_bytes; /* GEMM: column sums per slice (col_bytes: the tile's panels) */
    const oct_quant_kernel_set *ks;
    const oct_qpanel_kernels *unfold; /* GEMM: the packers of the ISA level ks was picked at */
    void *packed_buf;
    oct_qweights packed;
    void *dw_w; /* the depthwise strategy's plan and int8-domain weights (qconv_depthwise.c) */
    void *direct; /* the direct strategy's plan and packed weights (qconv_direct.c), or NULL */
    void *lanes;  /* the channel-lane strategy's (qconv_lanes.c), or NULL */
    int has_table;      /* a fused activation table maps every stored byte (fuse_qlut.c) */
    uint8_t table[256];
    /* When the scales and zero points are constants (as in every exported model): the
       requantization multipliers and int8-domain weight zero points, computed once at plan time
       instead of on every run. NULL: computed per run in the workspace head. */
    float *const_mult;
    int32_t *const_wzp;
    int const_any_wzp;
} qconv_params;

/* Run-time values shared by the strategies. */
typedef struct {
    const uint8_t *x;
    void *y;
    uint8_t x_xor;
    int32_t x_zp;         /* in the uint8 domain */
    const int32_t *w_zp;  /* per channel, int8 domain */
    int any_wzp;          /* some w_zp is not 0 */
    oct_requant rq;
    const uint8_t *table; /* the fused activation table, or NULL */
} qconv_run_args;

/* Maps the stored bytes of image b, output channels [ch, ch + nch), pixels [p0, p0 + np) of each
   plane through a->table (nothing without one): the depthwise strategy calls it on a work item's
   output as soon as the item is written, while the bytes are still in L1/L2 (the GEMM and direct
   write-backs map the bytes as they store them, through oct_requant.table). With sums (else NULL),
   sums[c] also gains the exact sum of channel ch + c's mapped values (the fused SE squeeze's). */
void qconv_apply_table(const qconv_params *p, const qconv_run_args *a, int64_t b, int64_t ch, int64_t nch,
                       int64_t p0, int64_t np, int64_t *sums);

/* The depthwise strategy. Planning sets p->tile and p->slice_bytes (per thread); packing prepares
   p->dw_w from the constant weights w (uint8 or int8 bytes as stored, p->w_u8 says which). */
int qconv_plan_depthwise(qconv_params *p, octet_error *err);
int qconv_pack_depthwise(qconv_params *p, const uint8_t *w, octet_error *err);
void qconv_run_depthwise(const oct_run_ctx *ctx, const qconv_params *p, const qconv_run_args *a);

/* The direct (no im2col) strategy for stride-1 layers with few channels: qconv_direct.c. fits()
   needs constant weights with zero points 0 in the int8 domain; plan() sets p->slice_bytes (per
   thread); pack() packs the constant weights w as stored. */
int qconv_direct_fits(oct_graph *g, const oct_node *n, const qconv_params *p);
int qconv_plan_direct(qconv_params *p, octet_error *err);
int qconv_pack_direct(qconv_params *p, const uint8_t *w, octet_error *err);
void qconv_run_direct(const oct_run_ctx *ctx, const qconv_params *p, const qconv_run_args *a);
void qconv_direct_free(void *direct);

/* True when every weight zero point of the (constant) weights is 0 in the int8 domain. */
int qconv_weight_zp_is_zero(oct_graph *g, const oct_node *n, const qconv_params *p);

/* The channel-lane strategy (2-D, one group, >= 16 input channels, a window larger than 1x1 or a
   small plane, QLinearConv, AVX-512 VNNI; fused activation tables with VBMI): qconv_lanes.c, with
   the direct strategy's contract. */
int qconv_lanes_fits(oct_graph *g, const oct_node *n, const qconv_params *p);
int qconv_plan_lanes(qconv_params *p, octet_error *err);
int qconv_pack_lanes(qconv_params *p, const uint8_t *w, octet_error *err);
void qconv_run_lanes(const oct_run_ctx *ctx, const qconv_params *p, const qconv_run_args *a);
void qconv_lanes_free(void *lanes);

#endif
