/* ConvTranspose (opsets 1..17): 1-D/2-D/3-D, groups, strides, dilations, pads, output_padding,
   output_shape, auto_pad, optional bias, fused epilogue.
   Computed as GEMM + col2im: for a block of output channels and a tile of input pixels,
   col[(mc*kvol) x tile] = W_g^T * X_g[:, tile], then col2im scatters col into the output. Work items
   own disjoint output channels, so the scatter needs no locks; the residual and activation are
   applied to an item's channels as soon as their last tile is in. When the windows tile the
   output without overlap (stride == kernel, as in U-Net upsampling), tiles are whole input rows
   and col2im writes each output pixel once with its bias: no bias fill and no accumulation. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn_common.h"

typedef struct {
    oct_conv_geom geom; /* in: this op's input, out: its output */
    int64_t N, C, M, group, Cg, Mg, kvol, in_vol, out_vol;
    int64_t tile, cblock;
    int disjoint;       /* oct_col2im_is_disjoint: write the output once instead of accumulating */
    int threads;
    float *wt;          /* constant weights, transposed once at plan time (else per run, in the workspace) */
    size_t wt_bytes, slice_bytes;
} convt_params;

static void convt_free(void *pp) {
    convt_params *p = pp;
    if (!p) return;
    free(p->wt);
    free(p);
}

/* W is [C, Mg, kvol]: per group a [Cg x Mg*kvol] matrix; the GEMM wants its transpose. */
static void transpose_weights(const convt_params *p, const float *w, float *wt) {
    const int64_t wg = p->Cg * p->Mg * p->kvol;
    for (int64_t gi = 0; gi < p->group; gi++)
        oct_ref_transpose_f32(w + gi * wg, p->Cg, p->Mg * p->kvol, p->Mg * p->kvol, wt + gi * wg);
}

enum { COL_BUDGET_FLOATS = 1 << 18, TILE_PIXELS = 256 };

/* Output size and padding of one spatial dim, as the ONNX spec (and its test data) define it:
   with output_shape given, or SAME_* auto_pad (output = input * stride), the total padding is
   derived from the output size; an odd pixel of padding goes to the end for SAME_UPPER and to
   the beginning otherwise. A negative total (output_shape larger than the natural size) pads
   nothing and leaves the extra output pixels at the end, holding only the bias. */
static int convt_dim(const char *auto_pad, int64_t in, int64_t s, int64_t ek, int64_t adj, int64_t want_out,
                     nn_window *w, int i, octet_error *err) {
    int same = strcmp(auto_pad, "SAME_UPPER") == 0 || strcmp(auto_pad, "SAME_LOWER") == 0;
    int64_t natural = s * (in - 1) + adj + ek;
    if (want_out < 0 && same) want_out = in * s;
    if (want_out >= 0) {
        int64_t total = natural - want_out;
        if (total < 0) total = 0;
        if (strcmp(auto_pad, "SAME_UPPER") == 0) {
            w->pad_begin[i] = total / 2;
            w->pad_end[i] = total - total / 2;
        } else {
            w->pad_begin[i] = total - total / 2;
            w->pad_end[i] = total / 2;
        }
        w->out[i] = want_out;
    } else {
        w->out[i] = natural - w->pad_begin[i] - w->pad_end[i];
    }
    if (w->out[i] < 1)
        return oct_fail(err, OCTET_ERR_SHAPE, "output spatial dim %d would be %lld", i, (long long)w->out[i]);
    return 0;
}

static int convt_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (oct_check_inputs(n, 2, 3, err)) return -1;
    if (n->n_out != 1) return oct_fail(err, OCTET_ERR_FORMAT, "ConvTranspose has %d outputs, expects 1", n->n_out);
    if (nn_require_float(g, n, 0, "input", err) || nn_require_float(g, n, 1, "weight", err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0), *w = oct_in_val(g, n, 1);
    if (x->rank < 3 || x->rank > 5)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                        "input '%s' has rank %d; ConvTranspose supports 1-D to 3-D (rank 3..5)", x->name, x->rank);
    if (w->rank != x->rank)
        return oct_fail(err, OCTET_ERR_SHAPE, "weight '%s' has rank %d, input has rank %d", w->name, w->rank, x->rank);
    const int64_t group = oct_attr_int(n, "group", 1);
    const int64_t C = x->dims[1];
    if (C < 1 || w->dims[1] < 1)
        return oct_fail(err, OCTET_ERR_SHAPE, "ConvTranspose needs at least one input and one output channel");
    if (group < 1 || C % group != 0)
        return oct_fail(err, OCTET_ERR_SHAPE, "group %lld does not divide the input channels %lld", (long long)group,
                        (long long)C);
    if (w->dims[0] != C)
        return oct_fail(err, OCTET_ERR_SHAPE, "weight '%s' has %lld input channels, the input has %lld", w->name,
                        (long long)w->dims[0], (long long)C);
    if (w->dims[1] > INT64_MAX / group) return oct_fail(err, OCTET_ERR_SHAPE, "output channel count overflows");
    const int64_t M = w->dims[1] * group;
    nn_window win = {.nsp = x->rank - 2};
    int64_t ks[OCTET_MAX_RANK], adj[OCTET_MAX_RANK], oshape[OCTET_MAX_RANK];
    int nks = oct_attr_ints(n, "kernel_shape", ks, OCTET_MAX_RANK, err);
    int nadj = nks == -2 ? -2 : oct_attr_ints(n, "output_padding", adj, OCTET_MAX_RANK, err);
    int nos = nadj == -2 ? -2 : oct_attr_ints(n, "output_shape", oshape, OCTET_MAX_RANK, err);
    if (nos == -2) return -1;
    if (nks >= 0 && nks != win.nsp)
        return oct_fail(err, OCTET_ERR_FORMAT, "kernel_shape has %d values for %d spatial dims", nks, win.nsp);
    if (nadj >= 0 && nadj != win.nsp)
        return oct_fail(err, OCTET_ERR_FORMAT, "output_padding has %d values for %d spatial dims", nadj, win.nsp);
    /* output_shape may list the spatial dims only, or the whole output shape. */
    const int64_t *os = NULL;
    if (nos >= 0) {
        if (nos == win.nsp) os = oshape;
        else if (nos == x->rank) os = oshape + 2;
        else return oct_fail(err, OCTET_ERR_FORMAT, "output_shape has %d values for %d spatial dims", nos, win.nsp);
    }
    if (nn_window_read_strides(n, &win, 1, err)) return -1;
    const char *ap = oct_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") && strcmp(ap, "VALID") && strcmp(ap, "SAME_UPPER") && strcmp(ap, "SAME_LOWER"))
        return oct_fail(err, OCTET_ERR_FORMAT, "unknown auto_pad '%s'", ap);
    if (strcmp(ap, "NOTSET") == 0) {
        if (nn_window_read_pads(n, &win, err)) return -1;
    } else {
        for (int i = 0; i < win.nsp; i++) win.pad_begin[i] = win.pad_end[i] = 0;
    }
    for (int i = 0; i < win.nsp; i++) {
        win.in[i] = x->dims[2 + i];
        win.k[i] = w->dims[2 + i];
        if (nks >= 0 && ks[i] != win.k[i])
            return oct_fail(err, OCTET_ERR_SHAPE, "kernel_shape[%d] = %lld does not match the weight (%lld)", i,
                            (long long)ks[i], (long long)win.k[i]);
        if (win.in[i] < 1) return oct_fail(err, OCTET_ERR_SHAPE, "spatial input dim %d is empty", i);
        int64_t a = nadj >= 0 ? adj[i] : 0;
        if (a < 0 || a > INT32_MAX)
            return oct_fail(err, OCTET_ERR_FORMAT, "output_padding[%d] is %lld", i, (long long)a);
        if (os && (os[i] < 1 || os[i] > INT32_MAX))
            return oct_fail(err, OCTET_ERR_FORMAT, "output_shape[%d] is %lld", i, (long long)os[i]);
        if (win.k[i] > INT32_MAX || win.in[i] > INT32_MAX || win.stride[i] > INT32_MAX || win.dil[i] > INT32_MAX)
            return oct_fail(err, OCTET_ERR_UNSUPPORTED, "spatial dim %d is too large", i);
        if (convt_dim(ap, win.in[i], win.stride[i], (win.k[i] - 1) * win.dil[i] + 1, a, os ? os[i] : -1, &win, i, err))
            return -1;
    }
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

    convt_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    nn_window_geom(&win, &p->geom);
    p->N = x->dims[0];
    p->C = C;
    p->M = M;
    p->group = group;
    p->Cg = C / group;
    p->Mg = M / group;
    p->kvol = oct_geom_k_vol(&p->geom);
    p->in_vol = oct_geom_in_vol(&p->geom);
    p->out_vol = oct_geom_out_vol(&p->geom);
    p->threads = nn_plan_threads();
    if (nn_check_int(p->Mg * p->kvol, "output channels per group x kernel volume", err) ||
        nn_check_int(p->Cg, "input channels per group", err) || nn_check_int(p->in_vol, "the input volume", err))
        return -1;
    if (p->out_vol > INT64_MAX / (p->M > 0 ? p->M : 1) / (p->N > 0 ? p->N : 1))
        return oct_fail(err, OCTET_ERR_NOMEM, "output size overflows");
    p->tile = p->in_vol < TILE_PIXELS ? p->in_vol : TILE_PIXELS;
    p->disjoint = oct_col2im_is_disjoint(&p->geom);
    if (p->disjoint) { /* whole input rows per tile */
        const int64_t w = p->geom.in[2];
        p->tile = w >= TILE_PIXELS ? w : TILE_PIXELS / w * w;
    }
    int64_t cb = COL_BUDGET_FLOATS / (p->kvol * p->tile);
    if (cb < 1) cb = 1;
    if (cb > p->Mg) cb = p->Mg;
    const int64_t outer = p->N * group > 0 ? p->N * group : 1;
    if (outer < p->threads) {
        int64_t split = (p->threads + outer - 1) / outer;
        int64_t per = (p->Mg + split - 1) / split;
        if (per < cb) cb = per;
    }
    p->cblock = cb;
    const size_t w_bytes = nn_float_bytes(oct_value_numel(w));
    p->slice_bytes = nn_float_bytes(cb * p->kvol * p->tile);
    if (!w_bytes || !p->slice_bytes || p->slice_bytes > (SIZE_MAX - w_bytes) / (size_t)p->threads)
        return oct_fail(err, OCTET_ERR_NOMEM, "ConvTranspose workspace size overflows");
    if (w->kind == OCT_VAL_CONST && w->data && !g->shapes_only) {
        if (!(p->wt = malloc(w_bytes))) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory transposing weights");
        transpose_weights(p, w->data, p->wt);
        n->run_unread_inputs |= 1u << 1; /* the plan may release the weights as stored */
    } else {
        p->wt_bytes = w_bytes; /* run-time weights: transposed per run */
    }
    n->workspace_bytes = p->wt_bytes + p->slice_bytes * (size_t)p->threads;
    return 0;
}

static int convt_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const convt_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "ConvTranspose run before infer");
    const float *x = oct_in(ctx, n, 0)->data;
    const float *bias = oct_node_has_input(n, 2) ? oct_in(ctx, n, 2)->data : NULL;
    float *y = oct_out(ctx, n, 0)->data;
    const float *res = nn_residual(ctx, n);
    if (p->N == 0) return 0;
    const int t = nn_run_threads(ctx, p->threads);
    const float *wt = p->wt;
    if (!wt) {
        transpose_weights(p, oct_in(ctx, n, 1)->data, ctx->workspace);
        wt = ctx->workspace;
    }
    const int64_t wg = p->Cg * p->Mg * p->kvol;
    const int64_t ncb = (p->Mg + p->cblock - 1) / p->cblock;
    const int64_t items = p->N * p->group * ncb;
    const oct_act act = nn_node_act(n);
    const oct_sgemm_fn sgemm = oct_kernels()->sgemm;
#pragma omp parallel num_threads(t) if (t > 1 && items > 1)
    {
        float *col = (float *)((char *)ctx->workspace + p->wt_bytes + (size_t)omp_get_thread_num() * p->slice_bytes);
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            const int64_t cbi = it % ncb, bg = it / ncb, b = bg / p->group, gi = bg % p->group;
            const int64_t m0 = cbi * p->cblock, mc = p->Mg - m0 < p->cblock ? p->Mg - m0 : p->cblock;
            const int64_t ch = gi * p->Mg + m0;
            float *yb = y + (b * p->M + ch) * p->out_vol;
            for (int64_t m = 0; m < mc && !p->disjoint; m++) {
                const float bv = bias ? bias[ch + m] : 0.f;
                float *yc = yb + m * p->out_vol;
                for (int64_t q = 0; q < p->out_vol; q++) yc[q] = bv;
            }
            const float *xg = x + (b * p->C + gi * p->Cg) * p->in_vol;
            const float *wrows = wt + gi * wg + m0 * p->kvol * p->Cg;
            for (int64_t p0 = 0; p0 < p->in_vol; p0 += p->tile) {
                const int64_t np = p->in_vol - p0 < p->tile ? p->in_vol - p0 : p->tile;
                sgemm((int)(mc * p->kvol), (int)np, (int)p->Cg, wrows, (int)p->Cg, xg + p0, (int)p->in_vol, col,
                      (int)np, 0);
                if (p->disjoint)
                    oct_ref_col2im_tile_disjoint(&p->geom, col, mc, p0, np, bias ? bias + ch : NULL, yb);
                else
                    oct_ref_col2im_tile(&p->geom, col, mc, p0, np, yb);
            }
            if (!res && act.kind == OCT_ACT_NONE) continue;
            oct_epilogue_args e = {.alpha = 1.f, .res = res ? res + (b * p->M + ch) * p->out_vol : NULL,
                                   .ldr = p->out_vol, .act = act};
            oct_ref_epilogue(yb, p->out_vol, mc, p->out_vol, &e);
        }
    }
    return 0;
}

const oct_op oct_op_conv_transpose = {"", "ConvTranspose", 0, convt_infer, convt_run, convt_free};
