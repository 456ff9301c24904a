/* Conv's Winograd strategy for 2-D 3x3 stride-1 convolutions: F(4x4, 3x3) (kernels/ref/winograd.h).
   Per work item (an image's block of tiles, and a block of output channels):
     1. B^T d B of the block's tiles for every input channel into the thread's V slice [36][C][nt];
     2. 36 GEMMs Y[pos] (mc x nt) = U[pos] (mc x C) * V[pos] (C x nt), U = G g G^T transformed once
        at plan time;
     3. A^T Y A with the epilogue (bias, residual, activation) written straight into the NCHW output.
   That takes 36 instead of 144 multiplications per tile and channel pair, at the price of the
   transforms and of U being 4x larger than the weights: where few tiles share each U (deep layers
   with small planes) the GEMMs stream U from memory, so the plan picks this strategy only where it
   measured faster (conv_winograd_fits). OCTET_WINOGRAD=0 turns it off, =1 forces it on every
   layer it can run. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "ref/winograd.h"

/* Floats of V + Y one thread works on: their slices of one position (and U's) stay in L2 during
   each GEMM; the whole block only streams through L2 between the three phases. */
enum { SLICE_BUDGET_FLOATS = 1 << 19, MIN_BLOCK = 16, MAX_BLOCK = 256 };

/* The plan: geometry, blocking, then the transformed weights u[36][M][C] in the same allocation
   (64-byte aligned), so conv_free's one free() releases everything. */
typedef struct {
    oct_wino_geom geom;
    int64_t tiles;   /* tiles per image */
    int64_t block;   /* tiles per work item */
    int64_t mblock;  /* output channels per work item */
    int64_t v_floats; /* per-thread V slice, rounded to 16 floats */
    float *u;
} conv_wino;

static size_t header_bytes(void) { return (sizeof(conv_wino) + 63) / 64 * 64; }

int conv_winograd_fits(oct_graph *g, const oct_node *n, const conv_params *p) {
    const char *env = getenv("OCTET_WINOGRAD");
    if (env && strcmp(env, "0") == 0) return 0;
    const oct_conv_geom *ge = &p->geom;
    if (p->group != 1 || ge->in[0] != 1 || ge->k[0] != 1 || ge->k[1] != 3 || ge->k[2] != 3) return 0;
    for (int i = 1; i < 3; i++)
        if (ge->stride[i] != 1 || ge->dil[i] != 1) return 0;
    const oct_value *w = oct_in_val(g, n, 1);
    if (w->kind != OCT_VAL_CONST || !w->data) return 0; /* U is computed once, at plan time */
    if (env && strcmp(env, "1") == 0) return 1;
    /* Measured per layer against im2col on AVX-512, 1 thread, C = M: 2x (256 ch, 14x14 = 16 tiles) to
       5x (32 ch, 112x112) faster; 512 ch at 7x7 (4 tiles) 3x slower, as every tile block streams
       all of U (36 x 512 x 512 floats) for 4 tiles' worth of GEMM columns. */
    const int64_t tiles = ((ge->out[1] + 3) / 4) * ((ge->out[2] + 3) / 4); /* per image: blocks stay in one */
    return p->C >= 16 && p->M >= 16 && tiles >= 16;
}

int conv_plan_winograd(oct_graph *g, oct_node *n, conv_params *p, octet_error *err) {
    if (g->shapes_only) return 0; /* no weight transform for an infer whose params are discarded */
    const int64_t M = p->M, C = p->C;
    if (M > INT64_MAX / OCT_WINO_POS / C)
        return oct_fail(err, OCTET_ERR_NOMEM, "Winograd weights of %lld x %lld channels overflow", (long long)M,
                        (long long)C);
    const size_t u_bytes = nn_float_bytes(OCT_WINO_POS * M * C);
    if (!u_bytes || u_bytes > SIZE_MAX - header_bytes())
        return oct_fail(err, OCTET_ERR_NOMEM, "Winograd weights of %lld x %lld channels overflow", (long long)M,
                        (long long)C);
    conv_wino *wp = aligned_alloc(64, header_bytes() + u_bytes);
    if (!wp) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory for the Winograd weights");
    memset(wp, 0, sizeof *wp);
    wp->u = (float *)((char *)wp + header_bytes());
    p->wino = wp;
    oct_ref_wino_weights(oct_in_val(g, n, 1)->data, M, C, wp->u);

    const oct_conv_geom *ge = &p->geom;
    wp->geom = (oct_wino_geom){.in_h = ge->in[1], .in_w = ge->in[2], .out_h = ge->out[1], .out_w = ge->out[2],
                               .pad_t = ge->pad[1], .pad_l = ge->pad[2], .tiles_x = (ge->out[2] + 3) / 4};
    wp->tiles = wp->geom.tiles_x * ((ge->out[1] + 3) / 4);

    /* The largest block within budget; then enough work items for every thread, splitting tiles
       down to MIN_BLOCK first (each split re-reads U), then output channels. */
    int64_t block = SLICE_BUDGET_FLOATS / (OCT_WINO_POS * (C + M));
    block = block / MIN_BLOCK * MIN_BLOCK;
    if (block < MIN_BLOCK) block = MIN_BLOCK;
    if (block > MAX_BLOCK) block = MAX_BLOCK;
    if (block > wp->tiles) block = wp->tiles;
    const int64_t want = 2 * (int64_t)p->threads;
    int64_t items = p->N * ((wp->tiles + block - 1) / block);
    if (items < want && block > MIN_BLOCK) {
        const int64_t per_image = (want + p->N - 1) / p->N;
        int64_t b2 = (wp->tiles + per_image - 1) / per_image;
        b2 = (b2 + MIN_BLOCK - 1) / MIN_BLOCK * MIN_BLOCK;
        if (b2 < block) block = b2 < MIN_BLOCK ? MIN_BLOCK : b2;
        if (block > wp->tiles) block = wp->tiles;
        items = p->N * ((wp->tiles + block - 1) / block);
    }
    wp->block = block;
    wp->mblock = M;
    if (items < want && M > 32) {
        const int64_t split = (want + items - 1) / items;
        int64_t mb = (M + split - 1) / split;
        mb = (mb + 7) / 8 * 8;
        wp->mblock = mb < 32 ? 32 : mb;
    }
    const size_t v_bytes = nn_float_bytes(OCT_WINO_POS * C * block);
    const size_t y_bytes = nn_float_bytes(OCT_WINO_POS * wp->mblock * block);
    if (!v_bytes || !y_bytes || v_bytes > SIZE_MAX - y_bytes)
        return oct_fail(err, OCTET_ERR_NOMEM, "Winograd workspace size overflows");
    wp->v_floats = (int64_t)(v_bytes / sizeof(float));
    p->slice_bytes = v_bytes + y_bytes;
    if (p->slice_bytes > SIZE_MAX / (size_t)p->threads)
        return oct_fail(err, OCTET_ERR_NOMEM, "Winograd workspace size overflows");
    n->workspace_bytes = p->slice_bytes * (size_t)p->threads;
    return 0;
}

void conv_run_winograd(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                       const float *bias, const float *res, float *y) {
    const conv_wino *wp = p->wino;
    const int t = nn_run_threads(ctx, p->threads);
    const int64_t M = p->M, C = p->C;
    const int64_t nblk = (wp->tiles + wp->block - 1) / wp->block;
    const int64_t nmb = (M + wp->mblock - 1) / wp->mblock;
    const int64_t items = p->N * nblk * nmb;
    const oct_act act = nn_node_act(n);
    const oct_wino_kernel_set *ks = oct_wino_kernels();
    const oct_sgemm_fn sgemm = oct_kernels()->sgemm;
    const int64_t in_plane = p->in_vol, out_plane = p->P;
#pragma omp parallel num_threads(t) if (t > 1 && items > 1)
    {
        float *v = (float *)((char *)ctx->workspace + (size_t)omp_get_thread_num() * p->slice_bytes);
        float *yb = v + wp->v_floats;
        int64_t have = -1; /* the tile block whose transform V holds: output-channel blocks share it */
        /* Output-channel blocks innermost, so a thread often finds its V already transformed. */
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            const int64_t mbi = it % nmb, tb = it / nmb, blk = tb % nblk, b = tb / nblk;
            const int64_t t0 = blk * wp->block, nt = wp->tiles - t0 < wp->block ? wp->tiles - t0 : wp->block;
            const int64_t m0 = mbi * wp->mblock, mc = M - m0 < wp->mblock ? M - m0 : wp->mblock;
            if (have != tb) {
                ks->input(&wp->geom, x + b * C * in_plane, C, t0, nt, v, C * nt, nt);
                have = tb;
            }
            for (int pos = 0; pos < OCT_WINO_POS; pos++)
                sgemm((int)mc, (int)nt, (int)C, wp->u + (pos * M + m0) * C, (int)C, v + pos * C * nt, (int)nt,
                      yb + pos * mc * nt, (int)nt, 0);
            const int64_t off = (b * M + m0) * out_plane;
            ks->output(&wp->geom, yb, mc * nt, nt, mc, t0, nt, bias ? bias + m0 : NULL, res ? res + off : NULL,
                       &act, y + off);
        }
    }
}
