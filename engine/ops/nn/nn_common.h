/* Helpers shared by the nn ops: window geometry (Conv, ConvTranspose, pools), the fused epilogue
   of GEMM-shaped producers, a tiled parallel GEMM driver, and thread/workspace bookkeeping. */
#ifndef OCT_NN_COMMON_H
#define OCT_NN_COMMON_H

#include <stdint.h>

#include "../../op.h"
#include "ref/nn_kernels.h"
#include "sgemm_blocked.h"

/* Geometry of a sliding-window op over nsp (1..3) spatial dims, in ONNX order. */
typedef struct {
    int nsp;
    int64_t in[3], out[3], k[3], stride[3], dil[3], pad_begin[3], pad_end[3];
} nn_window;

/* Reads strides, dilations (if allow_dil) and pads/auto_pad of a forward window op (Conv,
   MaxPool, AveragePool) and computes the output dims. w->nsp, w->in and w->k must be set. */
int nn_window_forward(const oct_node *n, int ceil_mode, int allow_dil, nn_window *w,
                      octet_error *err);
/* Reads the strides/dilations attributes (default 1) into w. */
int nn_window_read_strides(const oct_node *n, nn_window *w, int allow_dil, octet_error *err);
/* Reads the explicit pads attribute (default 0) into w. */
int nn_window_read_pads(const oct_node *n, nn_window *w, octet_error *err);
/* The kernel's 3-D geometry, spatial dims right-aligned (missing leading dims are 1). */
void nn_window_geom(const nn_window *w, oct_conv_geom *g);

/* Frees params left by an earlier infer() (the planner re-runs infer after the passes). */
void nn_reset_params(oct_node *n);
/* Checks that n's fused residual (if any) is a float value shaped like output 0, and that an
   epilogue is only present on ops that apply it. */
int nn_check_epilogue(oct_graph *g, const oct_node *n, octet_error *err);
/* The activation of n's epilogue, and its residual tensor data (NULL when none). */
oct_act nn_node_act(const oct_node *n);
const float *nn_residual(const oct_run_ctx *ctx, const oct_node *n);

/* Whether value v is read only by depthwise convolutions, directly or through elementwise ops
   that keep its layout (a fused activation's table, Relu/Clip, QDQ pairs). Those consumers split
   their work by channels, in contiguous halves on 2 threads (elementwise ops split the flat tensor:
   for one image, the same halves), so a producer that splits its output channels the same way
   hands each core the channels it reads next from its own cache. */
int nn_feeds_channel_split(const oct_graph *g, int v);

/* Threads planned for workspace sizing, and the threads a run may use given that plan. */
int nn_plan_threads(void);
int nn_run_threads(const oct_run_ctx *ctx, int planned);

/* Bytes of n floats rounded up to a 64-byte line; 0 on overflow. */
size_t nn_float_bytes(int64_t n);
/* Checks that a dimension fits the int sizes of the GEMM kernels. */
int nn_check_int(int64_t v, const char *what, octet_error *err);

/* One GEMM whose operands may be packed ahead of time: ap / bp (or NULL) hold the whole of A / B
   packed for `arch` (oct_sgemm_pack_a/_b); a / b (with lda / ldb) are read when not packed. */
typedef struct {
    const oct_sgemm_arch *arch;
    int m, n, k;
    const float *a, *ap;
    int lda;
    const float *b, *bp;
    int ldb;
    float *y;
    int ldy;
    const oct_epilogue_args *e; /* NULL: none */
    int split_rows; /* 1: the threads split y's rows only (each gets a block of rows, all columns) */
} nn_gemm;

/* Runs g split over `threads` threads in tiles aligned to the arch's micro-tile, so that the packed
   strips of each tile start where the tile does. Each thread runs a contiguous range of the tiles
   (steal_range.h): a band of columns (pixels, for a conv) in the same place from layer to layer.
   The threads are ctx's team when there is one (oct_parallel; ctx may be NULL). */
void nn_gemm_run(const oct_run_ctx *ctx, int threads, const nn_gemm *g);

/* Weights packed once at plan time for the arch selected then. Runs keep using that arch with
   them (it ran on this CPU at plan time), even if OCTET_ISA changed since: a plan fixes its kernels. */
typedef struct {
    const oct_sgemm_arch *arch; /* NULL: none fixed at plan time */
    float *data;
    size_t floats_per_group;
} nn_packed;

/* Packs `groups` consecutive m x k row-major blocks of a (the A side: conv weights) or one k x n
   block of b (the B side, b_trans as Gemm's transB: Gemm/MatMul weights). 0, or -1 with err set. */
int nn_pack_a(nn_packed *pk, const oct_sgemm_arch *arch, int groups, int m, int k, const float *a,
              octet_error *err);
int nn_pack_b(nn_packed *pk, int k, int n, const float *b, int b_trans, octet_error *err);
/* Packs `groups` consecutive blocks of bt, each B transposed (n x k row-major: conv weights, output
   channels by reduction), as the B operand for `arch`. 0, or -1 with err set. */
int nn_pack_bt(nn_packed *pk, const oct_sgemm_arch *arch, int groups, int k, int n, const float *bt,
               octet_error *err);
/* The packed data of group gi, NULL when nothing was packed. */
const float *nn_packed_for(const nn_packed *pk, int64_t gi);
/* The arch to run a GEMM with: the plan's, or the one selected now when there is none. */
const oct_sgemm_arch *nn_packed_arch(const nn_packed *pk);
/* True when input i of n is a constant with data (weights that can be packed at plan time). */
int nn_input_is_const(oct_graph *g, const oct_node *n, int i);

/* Requires input i to be float32. */
int nn_require_float(oct_graph *g, const oct_node *n, int i, const char *what, octet_error *err);

#endif
