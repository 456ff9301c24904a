/* Conv (opsets 1..17): 1-D/2-D/3-D, groups, pads, strides, dilations, auto_pad, optional bias,
   fused epilogue. Strategies:
   - depthwise (one input channel per group): conv_depthwise.c;
   - pointwise (1x1, stride 1, no padding): GEMM straight on the input, no unfolding;
   - Winograd for the 3x3 stride-1 layers it takes: conv_winograd.c;
   - image stems (at most 4 input channels, column stride 2) by output rows: conv_few.c;
   - otherwise implicit GEMM: im2col of a tile of output pixels into the thread's workspace slice,
     then W_g[Mg x K] * col[K x tile] written into the output;
   - both GEMM strategies, for layers with few output pixels (7x7, 14x14), run transposed instead:
     Y^T = col^T * W_g^T, pixels on the micro-tile's rows and output channels on its vectors.
   The two GEMM strategies use constant weights packed once at plan time into the micro-kernel's
   A-panel layout, and apply bias, residual and activation in the GEMM tiles' write-back. */
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "im2col_isa.h"
#include "team.h"

/* Bytes of im2col buffer a thread may use: stays in L2 together with the GEMM's panels. */
enum { COL_BUDGET_FLOATS = 1 << 18 };

/* Pixels on the broadcast side: up to this many output pixels per image (im2col: 7x7 and 14x14
   layers; pointwise: 7x7 and 10x10, where at 14x14 the copy of x and the transposed store cost more
   than the fuller tiles save), and a per-thread product block of at most this many floats (256 KB,
   in L2 while the k blocks accumulate into it). Measured on AVX-512 (Zen 5), resnet/mobilenet layers. */
enum { PIXELS_A_MAX_P_IM2COL = 256, PIXELS_A_MAX_P_POINTWISE = 100, PIXELS_A_CT_FLOATS = 1 << 16 };

/* Constant weights of the GEMM strategies, packed per group as the A operand. Weights computed at
   run time stay unpacked (the GEMM packs them per call). */
static int pack_gemm_weights(oct_graph *g, const oct_node *n, conv_params *p, octet_error *err) {
    if (g->shapes_only || !nn_input_is_const(g, n, 1)) return 0;
    nn_packed pk;
    if (nn_pack_a(&pk, p->packed_arch, (int)p->group, (int)p->Mg, (int)p->K, oct_in_val(g, n, 1)->data, err))
        return -1;
    p->packed_w = pk.data;
    p->packed_group_floats = pk.floats_per_group;
    return 0;
}

/* Group gi's packed weights (NULL when the weights are not constant), and the arch of the plan. */
static const float *packed_group(const conv_params *p, int64_t gi) {
    const nn_packed pk = {p->packed_arch, p->packed_w, p->packed_group_floats};
    return nn_packed_for(&pk, gi);
}

static const oct_sgemm_arch *gemm_arch(const conv_params *p) {
    const nn_packed pk = {p->packed_arch, p->packed_w, p->packed_group_floats};
    return nn_packed_arch(&pk);
}

/* Whether a GEMM-strategy layer puts its output pixels on the GEMM's broadcast side. With few
   pixels (49 at 7x7) and many channels, pixels as columns leave ragged column strips (49 = 48 + 1)
   and each weight strip feeds only one or two tiles; as rows, the pixels fill micro-tiles of mr
   rows almost exactly, the output channels fill whole vectors, and each weight strip feeds every
   pixel strip. Needs constant weights (packed transposed at plan time). OCTET_CONV_PIXELS_A=0/1
   overrides the choice (tests and measurements). */
static int pixels_as_a_fits(oct_graph *g, const oct_node *n, const conv_params *p) {
    if (!nn_input_is_const(g, n, 1) || p->Mg < 16) return 0;
    const char *force = getenv("OCTET_CONV_PIXELS_A");
    if (force && (force[0] == '0' || force[0] == '1')) return force[0] == '1';
    return p->P <= (p->mode == CONV_POINTWISE ? PIXELS_A_MAX_P_POINTWISE : PIXELS_A_MAX_P_IM2COL);
}

/* Plans the pixels-as-rows GEMM: the weights packed as B (transposed), the workspace as one shared
   panel of the unfolded pixels (strips of mr pixels: the A layout) plus a product block per thread. */
static int plan_pixels_as_a(oct_graph *g, oct_node *n, conv_params *p, octet_error *err) {
    const oct_sgemm_arch *arch = p->packed_arch;
    const int64_t mr = arch->mr, nr = arch->nr, strips = (p->Mg + nr - 1) / nr;
    /* Slabs of whole weight strips: enough that each product block fits its budget, a multiple of
       the threads so that they finish together, never more than the strips. */
    int64_t slabs = (p->P * p->Mg + PIXELS_A_CT_FLOATS - 1) / PIXELS_A_CT_FLOATS;
    slabs = (slabs + p->threads - 1) / p->threads * p->threads;
    p->slabs = slabs < strips ? slabs : strips;
    int64_t widest = 0; /* strips in the widest slab */
    for (int64_t s = 0; s < p->slabs; s++) {
        const int64_t w = (s + 1) * strips / p->slabs - s * strips / p->slabs;
        if (w > widest) widest = w;
    }
    p->pixels_as_a = 1;
    p->panel_bytes = nn_float_bytes((p->P + mr - 1) / mr * mr * p->K);
    p->slice_bytes = nn_float_bytes(p->P * widest * nr);
    /* A pointwise panel is a plain copy of x: each thread makes its own rather than reading the
       half another core wrote (slow when the cores sit on different CCDs) after a barrier. */
    p->panel_per_thread = p->mode == CONV_POINTWISE && p->threads > 1;
    const size_t panels = p->panel_per_thread ? (size_t)p->threads : 1;
    if (!p->panel_bytes || !p->slice_bytes || p->panel_bytes > SIZE_MAX / 2 / panels ||
        p->slice_bytes > (SIZE_MAX / 2 - p->panel_bytes * panels) / (size_t)p->threads)
        return oct_fail(err, OCTET_ERR_NOMEM, "Conv workspace size overflows");
    n->workspace_bytes = p->panel_bytes * panels + p->slice_bytes * (size_t)p->threads;
    if (g->shapes_only) return 0;
    nn_packed pk;
    if (nn_pack_bt(&pk, arch, (int)p->group, (int)p->K, (int)p->Mg, oct_in_val(g, n, 1)->data, err)) return -1;
    p->packed_w = pk.data;
    p->packed_group_floats = pk.floats_per_group;
    return 0;
}

static int conv_infer_params(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    const int excite = (int)oct_attr_int(n, "octet_excite", 0);
    if (oct_check_inputs(n, 2, excite ? 4 : 3, err)) return -1;
    if (n->n_out != 1) return oct_fail(err, OCTET_ERR_FORMAT, "Conv has %d outputs, expects 1", n->n_out);
    if (nn_require_float(g, n, 0, "input", err) || nn_require_float(g, n, 1, "weight", err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0), *w = oct_in_val(g, n, 1);
    if (x->rank < 3 || x->rank > 5)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "input '%s' has rank %d; Conv supports 1-D to 3-D (rank 3..5)",
                        x->name, x->rank);
    if (w->rank != x->rank)
        return oct_fail(err, OCTET_ERR_SHAPE, "weight '%s' has rank %d, input has rank %d", w->name, w->rank, x->rank);
    const int64_t group = oct_attr_int(n, "group", 1);
    const int64_t C = x->dims[1], M = w->dims[0];
    if (C < 1 || M < 1)
        return oct_fail(err, OCTET_ERR_SHAPE, "Conv needs at least one input and one output channel");
    if (group < 1 || C % group != 0 || M % group != 0)
        return oct_fail(err, OCTET_ERR_SHAPE, "group %lld does not divide input channels %lld and output channels %lld",
                        (long long)group, (long long)C, (long long)M);
    if (w->dims[1] != C / group)
        return oct_fail(err, OCTET_ERR_SHAPE, "weight '%s' has %lld input channels per group, expected %lld",
                        w->name, (long long)w->dims[1], (long long)(C / group));
    nn_window win = {.nsp = x->rank - 2};
    int64_t ks[OCTET_MAX_RANK];
    int nks = oct_attr_ints(n, "kernel_shape", ks, OCTET_MAX_RANK, err);
    if (nks == -2) return -1;
    if (nks >= 0 && nks != win.nsp)
        return oct_fail(err, OCTET_ERR_FORMAT, "kernel_shape has %d values for %d spatial dims", nks, win.nsp);
    for (int i = 0; i < win.nsp; i++) {
        win.in[i] = x->dims[2 + i];
        win.k[i] = w->dims[2 + i];
        if (nks >= 0 && ks[i] != win.k[i])
            return oct_fail(err, OCTET_ERR_SHAPE, "kernel_shape[%d] = %lld does not match the weight (%lld)", i,
                            (long long)ks[i], (long long)win.k[i]);
    }
    if (nn_window_forward(n, 0, 1, &win, err)) return -1;
    if (oct_node_has_input(n, 2)) {
        if (nn_require_float(g, n, 2, "bias", err)) return -1;
        const oct_value *b = oct_in_val(g, n, 2);
        if (b->rank != 1 || b->dims[0] != M)
            return oct_fail(err, OCTET_ERR_SHAPE, "bias '%s' must have shape [%lld]", b->name, (long long)M);
    }
    int64_t dims[OCTET_MAX_RANK] = {x->dims[0], M};
    for (int i = 0; i < win.nsp; i++) dims[2 + i] = win.out[i];
    oct_set_output(g, n, 0, OCTET_FLOAT, x->rank, dims);
    if (nn_check_epilogue(g, n, err)) return -1;

    conv_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    nn_window_geom(&win, &p->geom);
    p->N = x->dims[0];
    p->C = C;
    p->M = M;
    p->group = group;
    p->Cg = C / group;
    p->Mg = M / group;
    p->kvol = oct_geom_k_vol(&p->geom);
    p->K = p->Cg * p->kvol;
    p->P = oct_geom_out_vol(&p->geom);
    p->in_vol = oct_geom_in_vol(&p->geom);
    p->threads = nn_plan_threads();
    n->params = p;
    if (excite) {
        if (!oct_node_has_input(n, 3) || nn_require_float(g, n, 3, "excite scale", err)) return -1;
        const oct_value *sv = oct_in_val(g, n, 3);
        if (sv->rank != x->rank || (sv->dims[0] != 1 && sv->dims[0] != p->N) || sv->dims[1] != C)
            return oct_fail(err, OCTET_ERR_SHAPE, "excite scale '%s' must have one value per channel", sv->name);
        for (int d = 2; d < sv->rank; d++)
            if (sv->dims[d] != 1)
                return oct_fail(err, OCTET_ERR_SHAPE, "excite scale '%s' must have one value per channel", sv->name);
        p->excite = 1;
        p->excite_per_image = sv->dims[0] == p->N && p->N > 1;
    }
    if (nn_check_int(p->K, "the reduction size (channels x kernel volume)", err) ||
        nn_check_int(p->P, "the output volume", err) || nn_check_int(p->in_vol, "the input volume", err) ||
        nn_check_int(p->M, "the output channel count", err))
        return -1;
    int pointwise = 1;
    for (int i = 0; i < 3; i++)
        pointwise &= p->geom.k[i] == 1 && p->geom.stride[i] == 1 && p->geom.pad[i] == 0;
    n->workspace_bytes = 0;
    /* The GEMM strategies' kernels are fixed here: the weight packing and the im2col panels follow
       their micro-tile. */
    p->packed_arch = oct_sgemm_arch_current();
    if (p->excite && !pointwise)
        return oct_fail(err, OCTET_ERR_INTERNAL, "Conv '%s': a fused excite needs a 1x1 convolution", n->name);
    if (conv_direct_fits(g, n, p) && !p->excite) {
        p->mode = CONV_DIRECT;
        return conv_plan_direct(g, n, p, err);
    } else if (p->Cg == 1) {
        p->mode = CONV_DEPTHWISE;
        return conv_plan_depthwise(g, n, p, err);
    } else if (pointwise) {
        p->mode = CONV_POINTWISE;
        if (p->excite) { /* weights scaled per run into the workspace (packed at plan time) */
            if (p->group != 1 || !nn_input_is_const(g, n, 1))
                return oct_fail(err, OCTET_ERR_INTERNAL, "Conv '%s': a fused excite needs constant ungrouped weights",
                                n->name);
            n->workspace_bytes = nn_float_bytes((int64_t)oct_sgemm_packed_a_floats(p->packed_arch, (int)p->Mg, (int)p->K));
            if (!n->workspace_bytes) return oct_fail(err, OCTET_ERR_NOMEM, "Conv workspace size overflows");
            return pack_gemm_weights(g, n, p, err);
        }
        if (pixels_as_a_fits(g, n, p)) return plan_pixels_as_a(g, n, p, err);
        /* an expansion feeding a depthwise conv: output channels split as the depthwise conv splits
           them, so that each core reads its channels from its own cache (see qconv.c) */
        p->split_channels = p->threads > 1 && p->N * p->group == 1 && nn_feeds_channel_split(g, n->out[0]);
    } else if (conv_winograd_fits(g, n, p)) {
        p->mode = CONV_WINOGRAD;
        return conv_plan_winograd(g, n, p, err);
    } else if (conv_few_fits(g, n, p)) {
        p->mode = CONV_FEW;
        return conv_plan_few(g, n, p, err);
    } else {
        p->mode = CONV_IM2COL;
        if (pixels_as_a_fits(g, n, p)) return plan_pixels_as_a(g, n, p, err);
        /* Tiles of whole B strips, unfolded straight into the GEMM's panel layout. */
        const int64_t nr = p->packed_arch->nr, mr = p->packed_arch->mr;
        int64_t tile = COL_BUDGET_FLOATS / p->K;
        if (tile > 2048) tile = 2048;
        tile = tile / nr * nr;
        /* At least a few strips even when K is large (the GEMM walks the panel one k block at a
           time, so only that slice needs to stay in cache): each tile streams all of A, and a
           sliver of a last tile (49 pixels as 48 + 1) would stream it again for nothing. */
        if (tile < 4 * nr) tile = 4 * nr;
        /* Work for every thread: first pixel tiles, as many per image as a multiple of the threads
           (so that they finish together) while a tile keeps a few strips; then channel blocks. */
        const int64_t outer = p->N * group > 0 ? p->N * group : 1;
        const int64_t want = 2 * (int64_t)p->threads;
        int64_t ntiles = (p->P + tile - 1) / tile;
        if (p->threads > 1 && outer * ntiles < 4 * p->threads) {
            const int64_t even = (ntiles + p->threads - 1) / p->threads * p->threads;
            if ((p->P + even - 1) / even >= 4 * nr) ntiles = even;
        }
        /* Tiles of whole strips, as even as strips allow (784 pixels in 5 tiles: 3 to 4 strips each,
           not 4 tiles of 4 and a sliver of 16 pixels that streams all of A again). */
        const int64_t strips = (p->P + nr - 1) / nr;
        if (ntiles > strips) ntiles = strips;
        tile = (strips + ntiles - 1) / ntiles * nr;
        if (tile > p->P) tile = p->P;
        p->tile = tile;
        p->ntiles = ntiles;
        p->mblock = p->Mg;
        const int64_t items = outer * ntiles;
        /* Too few items, or a count the threads cannot share evenly: channel blocks too. 5 tiles
           on 2 threads left one with 3 (ResNet-50's 128->128 3x3/2 at 56x56: 1.46 -> 1.08 ms at 2
           threads as 10 items); with whole tiles per thread but the middle one split, only that
           tile is unfolded twice. */
        const int uneven = items % p->threads != 0;
        if ((items < want || uneven) && p->Mg > 32) {
            /* Channel blocks start on a micro-tile row, where a packed A strip starts. */
            const int64_t least = (32 + mr - 1) / mr * mr;
            int64_t split = (want + items - 1) / items;
            while ((items * split) % p->threads) split++;
            int64_t mb = (p->Mg + split - 1) / split;
            mb = (mb + mr - 1) / mr * mr;
            p->mblock = mb < least ? least : mb;
        }
        p->slice_bytes = nn_float_bytes(p->K * ((tile + nr - 1) / nr * nr));
        if (!p->slice_bytes || p->slice_bytes > SIZE_MAX / (size_t)p->threads)
            return oct_fail(err, OCTET_ERR_NOMEM, "im2col workspace size overflows");
        n->workspace_bytes = p->slice_bytes * (size_t)p->threads;
    }
    return pack_gemm_weights(g, n, p, err);
}

static int conv_infer(oct_graph *g, oct_node *n, octet_error *err) {
    if (conv_infer_params(g, n, err)) return -1;
    const conv_params *p = n->params;
    /* strategies holding their own copy of the constant weights never read input 1 */
    const int own_copy = p->mode == CONV_WINOGRAD ? p->wino != NULL
                         : p->mode == CONV_DIRECT ? p->direct != NULL
                         : p->mode == CONV_DEPTHWISE ? 0 : p->packed_w != NULL;
    if (own_copy) n->run_unread_inputs |= 1u << 1;
    return 0;
}

/* The packed weights (strips of mr rows, element [k * mr + i]) times scale[k], into scaled. */
static void scale_packed(const oct_sgemm_arch *arch, const conv_params *p, const float *packed, const float *scale,
                         float *scaled) {
    const int64_t mr = arch->mr, strips = (p->Mg + mr - 1) / mr;
    for (int64_t s = 0; s < strips; s++)
        for (int64_t k = 0; k < p->K; k++) {
            const int64_t at = (s * p->K + k) * mr;
            for (int64_t i = 0; i < mr; i++) scaled[at + i] = packed[at + i] * scale[k];
        }
}

static void run_pointwise(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                          const float *w, const float *bias, const float *res, float *y) {
    const int t = nn_run_threads(ctx, p->threads);
    const oct_sgemm_arch *arch = gemm_arch(p);
    const float *excite = p->excite ? oct_in(ctx, n, 3)->data : NULL;
    for (int64_t b = 0; b < p->N; b++)
        for (int64_t gi = 0; gi < p->group; gi++) {
            const float *ap = packed_group(p, gi);
            if (excite && (b == 0 || p->excite_per_image)) { /* one group (conv_infer_params) */
                scale_packed(arch, p, ap, excite + (p->excite_per_image ? b * p->C : 0), ctx->workspace);
            }
            if (excite) ap = ctx->workspace;
            const int64_t yoff = (b * p->M + gi * p->Mg) * p->P;
            const oct_epilogue_args e = {.alpha = 1.f, .row_bias = bias ? bias + gi * p->Mg : NULL,
                                         .res = res ? res + yoff : NULL, .ldr = p->P, .act = nn_node_act(n)};
            const nn_gemm gm = {.arch = arch, .m = (int)p->Mg, .n = (int)p->P, .k = (int)p->Cg,
                                .a = ap ? NULL : w + gi * p->Mg * p->Cg, .ap = ap, .lda = (int)p->Cg,
                                .b = x + (b * p->C + gi * p->Cg) * p->in_vol, .ldb = (int)p->in_vol,
                                .y = y + yoff, .ldy = (int)p->P, .e = &e, .split_rows = p->split_channels};
            nn_gemm_run(ctx, t, &gm);
        }
}

/* What the work items of the im2col and pixels-as-A strategies share. */
typedef struct {
    const oct_run_ctx *ctx;
    const conv_params *p;
    const float *x, *w, *bias, *res;
    float *y;
    oct_act act;
    int64_t b, gi; /* pixels-as-A: the image and group being run */
    const float *xg;
    float *panel;  /* pixels-as-A: the shared panel (one per thread: panel_per_thread) */
} conv_job;

/* One thread's part of the im2col strategy: a contiguous run of items, tile-major with channel
   blocks innermost, so that the thread unfolds each of its tiles once for all their channel blocks
   (the plan makes the item count a multiple of the threads where it can). */
static void im2col_part(void *arg, int tid, int nthreads) {
    const conv_job *j = arg;
    const conv_params *p = j->p;
    /* The plan's arch even for weights not packed at plan time: the tiles and the workspace follow
       its strips. */
    const oct_sgemm_arch *arch = p->packed_arch;
    const int64_t ntiles = p->ntiles, nr = arch->nr, strips = (p->P + nr - 1) / nr;
    const int64_t nmb = (p->Mg + p->mblock - 1) / p->mblock;
    int64_t i0, i1;
    oct_static_range(p->N * p->group * ntiles * nmb, tid, nthreads, &i0, &i1);
    float *col = (float *)((char *)j->ctx->workspace + (size_t)tid * p->slice_bytes);
    int64_t have = -1; /* the tile whose panel col holds: its channel blocks need no new unfold */
    for (int64_t it = i0; it < i1; it++) {
        const int64_t mbi = it % nmb, tile_i = (it / nmb) % ntiles, bg = it / (nmb * ntiles);
        const int64_t b = bg / p->group, gi = bg % p->group;
        const int64_t p0 = tile_i * strips / ntiles * nr, p1e = (tile_i + 1) * strips / ntiles * nr;
        const int64_t np = (p1e < p->P ? p1e : p->P) - p0;
        const int64_t m0 = mbi * p->mblock, mc = p->Mg - m0 < p->mblock ? p->Mg - m0 : p->mblock;
        if (have != it / nmb) {
            oct_im2col_f32_panel(&p->geom, j->x + (b * p->C + gi * p->Cg) * p->in_vol, p->Cg, p0, np, arch->nr, col);
            have = it / nmb;
        }
        const int64_t ch = gi * p->Mg + m0;
        const int64_t yoff = (b * p->M + ch) * p->P + p0;
        const oct_epilogue_args e = {.alpha = 1.f, .row_bias = j->bias ? j->bias + ch : NULL,
                                     .res = j->res ? j->res + yoff : NULL, .ldr = p->P, .act = j->act};
        const float *ap = packed_group(p, gi);
        const oct_sgemm_call q = {.m = (int)mc, .n = (int)np, .k = (int)p->K, .a = ap ? NULL : j->w + ch * p->K,
                                  .ap = ap ? ap + m0 * p->K : NULL, .lda = (int)p->K, .bp = col,
                                  .c = j->y + yoff, .ldc = (int)p->P, .e = &e};
        oct_sgemm_run(arch, &q);
    }
}

static void run_im2col(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                       const float *w, const float *bias, const float *res, float *y) {
    const int64_t items = p->N * p->group * p->ntiles * ((p->Mg + p->mblock - 1) / p->mblock);
    conv_job j = {ctx, p, x, w, bias, res, y, nn_node_act(n), 0, 0, NULL, NULL};
    oct_parallel(ctx, items > 1 ? nn_run_threads(ctx, p->threads) : 1, im2col_part, &j);
}

/* The pointwise layers' panel (strips of mr pixels, each holding every channel: the A layout), for
   pixels [p0, p1) of x, channels `channels` planes of P pixels apart. A 1x1 window needs no
   unfolding, only this transposing copy: mr contiguous floats per channel and strip, zero past P. */
static void pointwise_panel(const float *x, int64_t channels, int64_t P, int64_t mr, int64_t p0, int64_t p1,
                            float *panel) {
    for (int64_t s0 = p0; s0 < p1; s0 += mr) {
        const int64_t w = P - s0 < mr ? P - s0 : mr;
        float *dst = panel + s0 * channels;
        const float *src = x + s0;
        if (w == 8 && mr == 8) {
            for (int64_t c = 0; c < channels; c++) memcpy(dst + c * 8, src + c * P, 8 * sizeof(float));
            continue;
        }
        for (int64_t c = 0; c < channels; c++) {
            for (int64_t i = 0; i < w; i++) dst[c * mr + i] = src[c * P + i];
            for (int64_t i = w; i < mr; i++) dst[c * mr + i] = 0.f;
        }
    }
}

/* Part tid of the pixels-as-A panel of the job's image and group (a shared panel). */
static void pixels_panel_part(void *arg, int tid, int nthreads) {
    const conv_job *j = arg;
    const conv_params *p = j->p;
    const int64_t mr = p->packed_arch->mr, pstrips = (p->P + mr - 1) / mr;
    const int64_t s0 = tid * pstrips / nthreads, s1 = (tid + 1) * pstrips / nthreads;
    const int64_t p0 = s0 * mr, p1 = s1 * mr < p->P ? s1 * mr : p->P;
    if (p1 <= p0) return;
    if (p->mode == CONV_POINTWISE) pointwise_panel(j->xg, p->Cg, p->P, mr, p0, p1, j->panel);
    else oct_im2col_f32_panel(&p->geom, j->xg, p->Cg, p0, p1 - p0, mr, j->panel + p0 * p->K);
}

/* Part tid of the slabs of output channels of the job's image and group. */
static void pixels_slabs_part(void *arg, int tid, int nthreads) {
    const conv_job *j = arg;
    const conv_params *p = j->p;
    const oct_sgemm_arch *arch = p->packed_arch;
    const int64_t nr = arch->nr, wstrips = (p->Mg + nr - 1) / nr;
    const size_t panels = p->panel_per_thread ? (size_t)p->threads : 1;
    float *ct = (float *)((char *)j->ctx->workspace + p->panel_bytes * panels + (size_t)tid * p->slice_bytes);
    float *panel = j->panel;
    int64_t s0, s1;
    oct_static_range(p->slabs, tid, nthreads, &s0, &s1);
    if (p->panel_per_thread && s1 > s0) { /* pointwise layers: each thread copies its own panel */
        panel = (float *)((char *)j->ctx->workspace + (size_t)tid * p->panel_bytes);
        pointwise_panel(j->xg, p->Cg, p->P, arch->mr, 0, p->P, panel);
    }
    for (int64_t s = s0; s < s1; s++) {
        const int64_t n0 = s * wstrips / p->slabs * nr, n1e = (s + 1) * wstrips / p->slabs * nr;
        const int64_t n1 = n1e < p->Mg ? n1e : p->Mg;
        const oct_sgemm_call q = {.m = (int)p->P, .n = (int)(n1 - n0), .k = (int)p->K, .ap = panel,
                                  .bp = packed_group(p, j->gi) + n0 * p->K, .c = ct, .ldc = (int)(n1 - n0)};
        oct_sgemm_run(arch, &q);
        const int64_t ch = j->gi * p->Mg + n0, yoff = (j->b * p->M + ch) * p->P;
        const oct_epilogue_args e = {.alpha = 1.f, .row_bias = j->bias ? j->bias + ch : NULL,
                                     .res = j->res ? j->res + yoff : NULL, .ldr = p->P, .act = j->act};
        oct_sgemm_store_transposed(arch, ct, (int)(n1 - n0), (int)p->P, (int)(n1 - n0), j->y + yoff, (int)p->P, &e);
    }
}

/* Y^T = col^T W^T per image and group (see pixels_as_a_fits): the threads unfold the pixels into
   the shared panel (pointwise layers: each copies its own), then each takes whole slabs of output
   channels, its product block stored transposed into y with the epilogue. The panel is whole
   before any slab reads it, and read by all slabs before the next image or group overwrites it:
   each is its own oct_parallel call. */
static void run_pixels_as_a(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                            const float *bias, const float *res, float *y) {
    const int t = nn_run_threads(ctx, p->threads);
    conv_job j = {ctx, p, x, NULL, bias, res, y, nn_node_act(n), 0, 0, NULL, ctx->workspace};
    for (int64_t bg = 0; bg < p->N * p->group; bg++) {
        j.b = bg / p->group;
        j.gi = bg % p->group;
        j.xg = x + (j.b * p->C + j.gi * p->Cg) * p->in_vol;
        if (!p->panel_per_thread) oct_parallel(ctx, t, pixels_panel_part, &j);
        oct_parallel(ctx, t, pixels_slabs_part, &j);
    }
}

static int conv_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const conv_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "Conv run before infer");
    const float *x = oct_in(ctx, n, 0)->data, *w = oct_in(ctx, n, 1)->data;
    const float *bias = oct_node_has_input(n, 2) ? oct_in(ctx, n, 2)->data : NULL;
    float *y = oct_out(ctx, n, 0)->data;
    const float *res = nn_residual(ctx, n);
    if (p->N == 0 || p->P == 0) return 0;
    if (p->pixels_as_a || p->excite) {
        if (!p->packed_w) return oct_fail(err, OCTET_ERR_INTERNAL, "Conv '%s': weights were not packed", n->name);
    }
    if (p->pixels_as_a) {
        run_pixels_as_a(ctx, n, p, x, bias, res, y);
        return 0;
    }
    switch (p->mode) {
    case CONV_DEPTHWISE: conv_run_depthwise(ctx, n, p, x, w, bias, res, y); break;
    case CONV_POINTWISE: run_pointwise(ctx, n, p, x, w, bias, res, y); break;
    case CONV_WINOGRAD: conv_run_winograd(ctx, n, p, x, bias, res, y); break;
    case CONV_DIRECT: conv_run_direct(ctx, n, p, x, bias, res, y); break;
    case CONV_FEW: conv_run_few(ctx, n, p, x, w, bias, res, y); break;
    default: run_im2col(ctx, n, p, x, w, bias, res, y); break;
    }
    return 0;
}

static void conv_free(void *pp) {
    conv_params *p = pp;
    if (!p) return;
    free(p->packed_w);
    free(p->dw_w);
    free(p->wino);
    conv_few_free(p->few);
    conv_direct_free(p->direct);
    free(p);
}

const oct_op oct_op_conv = {"", "Conv", OCT_OP_TEAM, conv_infer, conv_run, conv_free};
