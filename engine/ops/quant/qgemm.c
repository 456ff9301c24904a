/* com.microsoft QGemm: Y = alpha * A' * B' + C over 8-bit A and B (uint8 or int8 each), with
   transA/transB; a_scale and a_zero_point per tensor, b_scale and b_zero_point per tensor or per
   column of B'; optional int32 C (scale alpha * a_scale * b_scale, zero point 0) broadcastable to
   (M, N); with y_scale and y_zero_point the output is requantized to y_zero_point's type, without
   them it is float32. Inputs: A, a_scale, a_zero_point, B, b_scale, b_zero_point, [C], [y_scale],
   [y_zero_point]. A fused Relu/Clip narrows the requantization clamp (or clamps the float output).

   As QLinearMatMul, the GEMM runs transposed, Y'[N x M] = B'^T * A'^T, so that B' is the packed
   "weight" operand with one row per output column (per-column scales are per-row multipliers) and
   a tile of A's rows is packed once into the kernel set's activation panels. A constant B is
   packed at plan time, otherwise once per run in the workspace; scales and zero points are read
   at run time. A requantized output with no C, or a C that is one value per output column (a
   bias), is written by the fused GEMM from its registers; otherwise the int32 block goes through
   qgemm_store. */
#include <math.h>
#include <stdlib.h>

#include "../nn/nn_common.h"
#include "../nn/steal_range.h"
#include "qops_common.h"
#include "qpanel_isa.h"
#include "team.h"

enum { S_A = 0, S_AS, S_AZ, S_B, S_BS, S_BZ, S_C, S_YS, S_YZ };

typedef struct {
    int64_t M, K, N;
    int trans_a, trans_b;
    float alpha;
    int a_s8, b_u8, quantized, out_s8;
    int64_t b_scale_count, b_zp_count;
    int64_t c_ms, c_ns;      /* C's element strides along M and N (0 when broadcast); c present */
    int has_c;
    int64_t tm, nb;
    int threads;
    const oct_quant_kernel_set *ks;
    const oct_qpanel_kernels *packer; /* the panel packers of the ISA level ks was picked at */
    size_t pack_bytes;
    void *packed_buf;        /* constant B packed at plan time */
    oct_qweights packed;
    int b_const;
    /* workspace: [mult N][b zp N][run-time pack][per-thread panels + column sums + accumulators] */
    size_t off_bzp, off_pack, off_slices, panel_bytes, sums_bytes, slice_bytes;
} qgemm_params;

static void qgemm_free(void *pp) {
    qgemm_params *p = pp;
    if (!p) return;
    free(p->packed_buf);
    free(p);
}

/* C: int32, rank <= 2, unidirectionally broadcastable to (M, N). */
static int qgemm_check_c(oct_graph *g, const oct_node *n, qgemm_params *p, octet_error *err) {
    p->has_c = oct_node_has_input(n, S_C);
    if (!p->has_c) return 0;
    const oct_value *c = oct_in_val(g, n, S_C);
    if (c->dtype != OCTET_INT32)
        return oct_fail(err, OCTET_ERR_SHAPE, "C '%s' is %s, expected int32", c->name, octet_dtype_name(c->dtype));
    int64_t dm = 1, dn = 1;
    if (c->rank == 1) dn = c->dims[0];
    else if (c->rank == 2) {
        dm = c->dims[0];
        dn = c->dims[1];
    } else if (c->rank > 2) {
        return oct_fail(err, OCTET_ERR_SHAPE, "C '%s' has rank %d; at most 2", c->name, c->rank);
    }
    if ((dm != 1 && dm != p->M) || (dn != 1 && dn != p->N))
        return oct_fail(err, OCTET_ERR_SHAPE, "C '%s' (%lld x %lld) does not broadcast to the output (%lld x %lld)",
                        c->name, (long long)dm, (long long)dn, (long long)p->M, (long long)p->N);
    p->c_ns = dn == 1 ? 0 : 1;
    p->c_ms = dm == 1 ? 0 : dn;
    return 0;
}

static int qgemm_check(oct_graph *g, const oct_node *n, qgemm_params *p, octet_error *err) {
    if (quant_require_dtype(g, n, S_A, "input A", OCTET_UINT8, OCTET_INT8, err) ||
        quant_require_dtype(g, n, S_B, "input B", OCTET_UINT8, OCTET_INT8, err))
        return -1;
    const oct_value *a = oct_in_val(g, n, S_A), *b = oct_in_val(g, n, S_B);
    if (a->rank != 2 || b->rank != 2)
        return oct_fail(err, OCTET_ERR_SHAPE, "QGemm operands must be matrices ('%s' has rank %d, '%s' rank %d)",
                        a->name, a->rank, b->name, b->rank);
    p->trans_a = oct_attr_int(n, "transA", 0) != 0;
    p->trans_b = oct_attr_int(n, "transB", 0) != 0;
    p->alpha = oct_attr_float(n, "alpha", 1.f);
    p->M = a->dims[p->trans_a ? 1 : 0];
    p->K = a->dims[p->trans_a ? 0 : 1];
    const int64_t kb = b->dims[p->trans_b ? 1 : 0];
    p->N = b->dims[p->trans_b ? 0 : 1];
    if (kb != p->K)
        return oct_fail(err, OCTET_ERR_SHAPE, "inner dimensions differ: A' has %lld columns, B' has %lld rows",
                        (long long)p->K, (long long)kb);
    if (nn_check_int(p->M, "the row count of A'", err) || nn_check_int(p->K, "the inner dimension", err) ||
        nn_check_int(p->N, "the column count of B'", err))
        return -1;
    p->a_s8 = a->dtype == OCTET_INT8;
    p->b_u8 = b->dtype == OCTET_UINT8;
    if (qops_check_qparams(g, n, S_AS, S_AZ, a->dtype, "a", err)) return -1;
    p->b_scale_count = quant_check_param(g, n, S_BS, "b_scale", OCTET_FLOAT, p->N, "the columns of B'", err);
    if (p->b_scale_count < 0) return -1;
    p->b_zp_count = 1;
    if (oct_node_has_input(n, S_BZ) &&
        (p->b_zp_count = quant_check_param(g, n, S_BZ, "b_zero_point", b->dtype, p->N, "the columns of B'", err)) < 0)
        return -1;
    if (qgemm_check_c(g, n, p, err)) return -1;
    const int ys = oct_node_has_input(n, S_YS), yz = oct_node_has_input(n, S_YZ);
    if (ys != yz)
        return oct_fail(err, OCTET_ERR_FORMAT, "QGemm needs both y_scale and y_zero_point (quantized output) or neither");
    p->quantized = ys;
    if (p->quantized) {
        const oct_value *z = oct_in_val(g, n, S_YZ);
        if (!quant_is_8bit(z->dtype))
            return oct_fail(err, OCTET_ERR_SHAPE, "y_zero_point '%s' is %s, expected uint8 or int8", z->name,
                            octet_dtype_name(z->dtype));
        if (qops_check_qparams(g, n, S_YS, S_YZ, z->dtype, "y", err)) return -1;
        p->out_s8 = z->dtype == OCTET_INT8;
    }
    return quant_check_epilogue(n, err);
}

/* Packs B' (K x N) as N rows of K. */
static void qgemm_pack(const qgemm_params *p, const uint8_t *b, void *buf, oct_qweights *out) {
    if (p->trans_b) p->ks->qweights_pack((int)p->N, (int)p->K, b, p->b_u8, p->K, 1, buf, out);
    else p->ks->qweights_pack((int)p->N, (int)p->K, b, p->b_u8, 1, p->N, buf, out);
}

static int qgemm_plan(oct_graph *g, oct_node *n, qgemm_params *p, octet_error *err) {
    p->ks = quant_kernels();
    p->packer = oct_qpanel_kernels_selected();
    p->threads = nn_plan_threads();
    p->pack_bytes = quant_align64(p->ks->qweights_bytes((int)p->N, (int)p->K));
    if (!p->pack_bytes) return oct_fail(err, OCTET_ERR_NOMEM, "packed B size overflows");
    const oct_value *b = oct_in_val(g, n, S_B);
    p->b_const = b->kind == OCT_VAL_CONST && (b->data || oct_value_numel(b) == 0);
    if (p->b_const) {
        p->packed_buf = aligned_alloc(64, p->pack_bytes);
        if (!p->packed_buf) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory packing B");
        qgemm_pack(p, b->data, p->packed_buf, &p->packed);
    }
    int64_t tm = (1 << 18) / (p->K > 0 ? p->K : 1);
    if (tm > 256) tm = 256;
    if (tm < 16) tm = 16;
    if (tm > p->M) tm = p->M > 0 ? p->M : 1;
    int64_t nb = (1 << 14) / tm;
    if (nb < 8) nb = 8;
    if (nb > p->N) nb = p->N > 0 ? p->N : 1;
    const int64_t want = 2 * (int64_t)p->threads;
    while (((p->M + tm - 1) / tm) * ((p->N + nb - 1) / nb) < want && nb > 16) nb = (nb + 1) / 2;
    p->tm = tm;
    p->nb = nb;
    size_t off = quant_align64((size_t)p->N * sizeof(float));
    p->off_bzp = off;
    off += quant_align64((size_t)p->N * sizeof(int32_t));
    p->off_pack = off;
    if (!p->b_const) off += p->pack_bytes;
    p->off_slices = off;
    p->panel_bytes = oct_qpanel_bytes(p->ks->panel, p->K, tm);
    p->sums_bytes = quant_align64((size_t)tm * sizeof(int32_t));
    p->slice_bytes = p->panel_bytes + p->sums_bytes + quant_align64((size_t)(nb * tm) * sizeof(int32_t));
    if (!p->panel_bytes || p->slice_bytes > (SIZE_MAX - off) / (size_t)p->threads)
        return oct_fail(err, OCTET_ERR_NOMEM, "QGemm workspace size overflows");
    n->workspace_bytes = off + p->slice_bytes * (size_t)p->threads;
    return 0;
}

static int qgemm_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (qops_check_inputs(n, 6, 9, 0x1bu, err)) return -1;
    qgemm_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    if (qgemm_check(g, n, p, err)) return -1;
    const int64_t dims[2] = {p->M, p->N};
    const octet_dtype out = !p->quantized ? OCTET_FLOAT : (p->out_s8 ? OCTET_INT8 : OCTET_UINT8);
    oct_set_output(g, n, 0, out, 2, dims);
    return qgemm_plan(g, n, p, err);
}

/* Rows [m0, m0+tm) of A' as the panels' columns. */
static void qgemm_panel(const qgemm_params *p, const uint8_t *a, int64_t m0, int64_t tm, void *panel) {
    const uint8_t flip = p->a_s8 ? 0x80 : 0;
    if (p->trans_a) p->packer->pack(p->ks->panel, a + m0, p->M, 1, (int)p->K, (int)tm, flip, panel);
    else p->packer->pack(p->ks->panel, a + m0 * p->K, 1, p->K, (int)p->K, (int)tm, flip, panel);
}

typedef struct {
    const int32_t *c;
    const float *mult;
    oct_requant rq;
    float lo, hi; /* float output: the fused activation's clamp */
} qgemm_out;

/* Writes one block: acc[nr x tm] holds columns n0.. of rows m0.. of Y. */
static void qgemm_store(const qgemm_params *p, const qgemm_out *o, int32_t *acc, int64_t m0, int64_t tm, int64_t n0,
                        int64_t nr, void *y) {
    if (o->c)
        for (int64_t r = 0; r < nr; r++) {
            uint32_t *ar = (uint32_t *)acc + r * tm;
            const int32_t *cr = o->c + (n0 + r) * p->c_ns + m0 * p->c_ms;
            for (int64_t c = 0; c < tm; c++) ar[c] += (uint32_t)cr[c * p->c_ms];
        }
    if (p->quantized) {
        p->ks->requant(acc, tm, (int)n0, (int)nr, (int)tm, &o->rq, (uint8_t *)y + m0 * p->N + n0, 1, p->N);
        return;
    }
    float *yf = (float *)y + m0 * p->N + n0;
    for (int64_t r = 0; r < nr; r++) {
        const float s = o->mult[n0 + r];
        for (int64_t c = 0; c < tm; c++) {
            float v = (float)acc[r * tm + c] * s;
            v = v < o->lo ? o->lo : (v > o->hi ? o->hi : v);
            yf[c * p->N + r] = v;
        }
    }
}

typedef struct {
    const qgemm_params *p;
    const qgemm_out *o;
    const uint8_t *a;
    void *y;
    char *ws;
    const oct_qweights *packed;
    nn_steal *work;
    int32_t a_zp;
    const int32_t *b_zp;
    int any_bzp, fused;
} qgemm_job;

/* One thread's part: the (row tile, column block) items it claims; a row tile's panel is packed
   once for the blocks that follow it. */
static void qgemm_part(void *arg, int me, int nthreads) {
    (void)nthreads;
    const qgemm_job *j = arg;
    const qgemm_params *p = j->p;
    const int64_t nblocks = (p->N + p->nb - 1) / p->nb;
    char *slice = j->ws + p->off_slices + (size_t)me * p->slice_bytes;
    void *panel = slice;
    int32_t *colsum = (int32_t *)(slice + p->panel_bytes);
    int32_t *acc = (int32_t *)(slice + p->panel_bytes + p->sums_bytes);
    int64_t have = -1;
    for (int64_t it; (it = nn_steal_next(j->work, me)) >= 0;) {
        const int64_t mt = it / nblocks, nbi = it % nblocks;
        const int64_t m0 = mt * p->tm, tm = p->M - m0 < p->tm ? p->M - m0 : p->tm;
        const int64_t n0 = nbi * p->nb, nr = p->N - n0 < p->nb ? p->N - n0 : p->nb;
        if (have != mt) {
            qgemm_panel(p, j->a, m0, tm, panel);
            if (j->any_bzp) oct_ref_qpanel_colsums(p->ks->panel, panel, (int)p->K, (int)tm, colsum);
            have = mt;
        }
        oct_qgemm_out out = {.x_zp = j->a_zp, .w_zp = j->b_zp, .colsum = j->any_bzp ? colsum : NULL};
        if (j->fused) {
            out.rq = &j->o->rq;
            out.y = (uint8_t *)j->y + m0 * p->N + n0;
            out.y_rs = 1;
            out.y_cs = p->N;
            p->ks->qgemm_panel(j->packed, (int)n0, (int)nr, (int)tm, panel, &out);
            continue;
        }
        out.y = acc;
        out.y_rs = tm;
        out.y_cs = 1;
        p->ks->qgemm_panel(j->packed, (int)n0, (int)nr, (int)tm, panel, &out);
        qgemm_store(p, j->o, acc, m0, tm, n0, nr, j->y);
    }
}

static int qgemm_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qgemm_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "QGemm run before infer");
    if (p->M == 0 || p->N == 0) return 0;
    char *ws = ctx->workspace;
    const uint8_t *a = oct_in(ctx, n, S_A)->data;
    void *y = oct_out(ctx, n, 0)->data;
    float *mult = (float *)ws;
    int32_t *b_zp = (int32_t *)(ws + p->off_bzp);
    const oct_tensor *bz = quant_opt_in(ctx, n, S_BZ);
    for (int64_t j = 0; j < p->N; j++) b_zp[j] = quant_zp_at(bz, p->b_zp_count > 1 ? j : 0) - (p->b_u8 ? 128 : 0);
    const qops_qparams aq = qops_run_qparams(ctx, n, S_AS, S_AZ);
    const float *sb = oct_in(ctx, n, S_BS)->data;
    qgemm_out o = {.c = p->has_c ? oct_in(ctx, n, S_C)->data : NULL, .mult = mult, .lo = -INFINITY, .hi = INFINITY};
    float sy = 1.f;
    if (p->quantized) {
        const qops_qparams yq = qops_run_qparams(ctx, n, S_YS, S_YZ);
        if (qops_check_scale_value(yq.scale, "y", err)) return -1;
        sy = yq.scale;
        const octet_dtype yt = p->out_s8 ? OCTET_INT8 : OCTET_UINT8;
        o.rq = (oct_requant){.scale = mult, .scale_per_row = 1, .bias = NULL, .zp = yq.zp, .qmin = quant_min(yt),
                             .qmax = quant_max(yt), .out_s8 = p->out_s8};
        quant_act_clamp(n, yq.scale, yq.zp, &o.rq.qmin, &o.rq.qmax);
    } else if (n->epi.act == OCT_ACT_RELU) {
        o.lo = 0.f;
    } else if (n->epi.act == OCT_ACT_CLIP) {
        o.lo = n->epi.alpha;
        o.hi = n->epi.beta;
    }
    for (int64_t j = 0; j < p->N; j++) {
        const float sbj = sb[p->b_scale_count > 1 ? j : 0];
        float m = aq.scale * sbj * p->alpha;
        if (p->quantized) m /= sy;
        if (!isfinite(m))
            return oct_fail(err, OCTET_ERR_FORMAT, "QGemm multiplier of column %lld is not finite (a_scale %g, b_scale %g)",
                            (long long)j, (double)aq.scale, (double)sbj);
        mult[j] = m;
    }
    const oct_qweights *packed = &p->packed;
    oct_qweights run_pack;
    if (!p->b_const) {
        qgemm_pack(p, oct_in(ctx, n, S_B)->data, ws + p->off_pack, &run_pack);
        packed = &run_pack;
    }
    const int32_t a_zp = aq.zp + (p->a_s8 ? 128 : 0);
    int any_bzp = 0;
    for (int64_t j = 0; j < p->N; j++) any_bzp |= b_zp[j] != 0;
    /* A C with one value per output column is the requantization's bias. */
    const int fused = p->quantized && (!o.c || (p->c_ms == 0 && p->c_ns == 1));
    if (fused && o.c) o.rq.bias = o.c;
    const int64_t mtiles = (p->M + p->tm - 1) / p->tm, nblocks = (p->N + p->nb - 1) / p->nb;
    const int64_t items = mtiles * nblocks;
    nn_steal work;
    const int t = items > 1 ? nn_run_threads(ctx, p->threads) : 1;
    if (nn_steal_init(&work, items, t))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "QGemm has %lld tiles, too many", (long long)items);
    qgemm_job j = {p, &o, a, y, ws, packed, &work, a_zp, b_zp, any_bzp, fused};
    oct_parallel(ctx, t, qgemm_part, &j);
    return 0;
}

const oct_op oct_op_qgemm = {"com.microsoft", "QGemm", OCT_OP_TEAM, qgemm_infer, qgemm_run, qgemm_free};
