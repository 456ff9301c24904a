/* QLinearMatMul and MatMulInteger (opset 10): numpy matmul (1-D operands, batch broadcasting)
   over uint8/int8 operands. a's zero point per tensor or per row, b's per tensor or per column
   (shape [M] or [..1, M, 1] for a; [N] or [..1, 1, N] for b; zero points that differ per batch
   are not supported). QLinearMatMul: a_scale and y_scale per tensor, b_scale per tensor or per
   column; the output type is y_zero_point's.

   The GEMM runs transposed, Y^T[N x M] = B^T[N x K] * A^T[K x M], so that b is the packed
   "weight" operand (rows = output columns, per-column scales become per-row multipliers, as for
   a convolution's output channels) and a tile of a's rows is packed once into the kernel set's
   activation panels; the fused GEMM writes the requantized (or int32) results from registers.
   A constant b is packed once at plan time; otherwise each of b's matrices is packed per run in
   the workspace. Scales and zero points are read at run time. QLinearMatMul honours a fused
   Relu/Clip epilogue by narrowing the requantization clamp. */
#include <omp.h>
#include <stdlib.h>

#include "../nn/nn_common.h"
#include "quant_common.h"

typedef struct {
    int a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp;
} qmm_slots;

static const qmm_slots QLINEAR_SLOTS = {0, 1, 2, 3, 4, 5, 6, 7};
static const qmm_slots INTEGER_SLOTS = {0, -1, 2, 1, -1, 3, -1, -1};

typedef struct {
    int qlinear;
    qmm_slots in;
    int64_t M, K, N;
    int64_t batches;              /* output matrices */
    int64_t a_mats, b_mats;       /* matrices in a and b */
    int64_t *a_of, *b_of;         /* per output matrix: the a and b matrix it reads */
    int a_s8, b_u8, out_s8;
    int64_t a_zp_count, b_zp_count, b_scale_count;
    int64_t tm, nb;               /* a rows per panel set, b columns per GEMM call */
    int threads;
    const oct_quant_kernel_set *ks;
    size_t pack_bytes;            /* one packed b matrix */
    void *packed_buf;             /* constant b: every matrix packed at plan time */
    oct_qweights *packed;
    /* workspace: [mult N][b zp N][a zp M][run-time packs][per-thread panels + column sums] */
    size_t off_bzp, off_azp, off_desc, off_packs, off_slices, panel_bytes, slice_bytes;
} qmm_params;

static void qmm_free(void *pp) {
    qmm_params *p = pp;
    if (!p) return;
    free(p->a_of);
    free(p->b_of);
    free(p->packed_buf);
    free(p->packed);
    free(p);
}

/* A zero point or scale of a's rows (per_row) or b's columns: one value, or `len` values shaped
   [len] or [1.., len, 1] (rows) / [1.., 1, len] (columns). Returns 1 or len, -1 with err. */
static int64_t qmm_check_vec(oct_graph *g, const oct_node *n, int i, const char *what, octet_dtype dtype,
                             int64_t len, int per_row, octet_error *err) {
    const oct_value *v = oct_in_val(g, n, i);
    if (v->dtype != dtype)
        return oct_fail(err, OCTET_ERR_SHAPE, "%s '%s' is %s, expected %s", what, v->name, octet_dtype_name(v->dtype),
                        octet_dtype_name(dtype));
    const int64_t count = oct_value_numel(v);
    if (count == 1) return 1;
    const char *kind = per_row ? "rows of a" : "columns of b";
    if (v->rank == 1 && v->dims[0] == len) return len;
    if (v->rank >= 2) {
        const int64_t want_r = per_row ? len : 1, want_c = per_row ? 1 : len;
        int leading_ones = 1;
        for (int d = 0; d < v->rank - 2; d++) leading_ones &= v->dims[d] == 1;
        if (v->dims[v->rank - 2] == want_r && v->dims[v->rank - 1] == want_c) {
            if (leading_ones) return len;
            return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s '%s' differs per batch; only per-tensor or per-%s values are supported",
                            what, v->name, per_row ? "row" : "column");
        }
    }
    return oct_fail(err, OCTET_ERR_SHAPE, "%s '%s' has %lld values (rank %d); expected one value or one per %s (%lld)",
                    what, v->name, (long long)count, v->rank, kind, (long long)len);
}

/* Shapes, broadcasting and the a/b matrix of every output matrix. */
static int qmm_shapes(oct_graph *g, const oct_node *n, qmm_params *p, octet_error *err) {
    const oct_value *a = oct_in_val(g, n, p->in.a), *b = oct_in_val(g, n, p->in.b);
    if (a->rank < 1 || b->rank < 1)
        return oct_fail(err, OCTET_ERR_SHAPE, "matmul operands must have rank >= 1 ('%s' %d, '%s' %d)", a->name, a->rank,
                        b->name, b->rank);
    p->M = a->rank == 1 ? 1 : a->dims[a->rank - 2];
    p->K = a->dims[a->rank - 1];
    const int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    p->N = b->rank == 1 ? 1 : b->dims[b->rank - 1];
    if (kb != p->K)
        return oct_fail(err, OCTET_ERR_SHAPE, "inner dimensions differ: '%s' has %lld columns, '%s' has %lld rows",
                        a->name, (long long)p->K, b->name, (long long)kb);
    const int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int rout;
    int64_t bdims[OCTET_MAX_RANK];
    if (oct_broadcast_shape(ra, a->dims, rb, b->dims, &rout, bdims, err)) return -1;
    int64_t dims[OCTET_MAX_RANK];
    int rank = 0;
    p->batches = 1;
    for (int d = 0; d < rout; d++) {
        dims[rank++] = bdims[d];
        p->batches *= bdims[d];
    }
    if (a->rank > 1) dims[rank++] = p->M;
    if (b->rank > 1) dims[rank++] = p->N;
    if (rank > OCTET_MAX_RANK) return oct_fail(err, OCTET_ERR_UNSUPPORTED, "output rank %d is too large", rank);
    if (nn_check_int(p->M, "the row count of a", err) || nn_check_int(p->K, "the inner dimension", err) ||
        nn_check_int(p->N, "the column count of b", err))
        return -1;
    p->a_mats = p->b_mats = 1;
    for (int d = 0; d < ra; d++) p->a_mats *= a->dims[d];
    for (int d = 0; d < rb; d++) p->b_mats *= b->dims[d];
    p->a_of = malloc(sizeof(int64_t) * (size_t)(p->batches > 0 ? p->batches : 1));
    p->b_of = malloc(sizeof(int64_t) * (size_t)(p->batches > 0 ? p->batches : 1));
    if (!p->a_of || !p->b_of) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    for (int64_t o = 0; o < p->batches; o++) {
        /* Unravel o over the broadcast batch dims; a dim of size 1 in an operand stays at 0. */
        int64_t rem = o, ai = 0, bi = 0, astride = 1, bstride = 1;
        for (int d = rout - 1; d >= 0; d--) {
            const int64_t idx = rem % bdims[d];
            rem /= bdims[d];
            const int da = d - (rout - ra), db = d - (rout - rb);
            if (da >= 0) {
                if (a->dims[da] != 1) ai += idx * astride;
                astride *= a->dims[da];
            }
            if (db >= 0) {
                if (b->dims[db] != 1) bi += idx * bstride;
                bstride *= b->dims[db];
            }
        }
        p->a_of[o] = ai;
        p->b_of[o] = bi;
    }
    const octet_dtype out = p->qlinear ? oct_in_val(g, n, p->in.y_zp)->dtype : OCTET_INT32;
    oct_set_output(g, n, 0, out, rank, dims);
    return 0;
}

static int qmm_check_params(oct_graph *g, const oct_node *n, qmm_params *p, octet_error *err) {
    const qmm_slots *s = &p->in;
    if (quant_require_dtype(g, n, s->a, "input a", OCTET_UINT8, OCTET_INT8, err) ||
        quant_require_dtype(g, n, s->b, "input b", OCTET_UINT8, OCTET_INT8, err))
        return -1;
    const octet_dtype at = oct_in_val(g, n, s->a)->dtype, bt = oct_in_val(g, n, s->b)->dtype;
    p->a_s8 = at == OCTET_INT8;
    p->b_u8 = bt == OCTET_UINT8;
    if (oct_node_has_input(n, s->a_zp) &&
        (p->a_zp_count = qmm_check_vec(g, n, s->a_zp, "a_zero_point", at, p->M, 1, err)) < 0)
        return -1;
    if (oct_node_has_input(n, s->b_zp) &&
        (p->b_zp_count = qmm_check_vec(g, n, s->b_zp, "b_zero_point", bt, p->N, 0, err)) < 0)
        return -1;
    if (!p->qlinear) return 0;
    const int64_t as = qmm_check_vec(g, n, s->a_scale, "a_scale", OCTET_FLOAT, p->M, 1, err);
    if (as < 0) return -1;
    if (as > 1)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                        "a_scale '%s' is per row; only a per-tensor a_scale is supported (as in ONNX Runtime)",
                        oct_in_val(g, n, s->a_scale)->name);
    p->b_scale_count = qmm_check_vec(g, n, s->b_scale, "b_scale", OCTET_FLOAT, p->N, 0, err);
    if (p->b_scale_count < 0 || quant_check_param(g, n, s->y_scale, "y_scale", OCTET_FLOAT, -1, NULL, err) < 0)
        return -1;
    const oct_value *yz = oct_in_val(g, n, s->y_zp);
    if (!quant_is_8bit(yz->dtype))
        return oct_fail(err, OCTET_ERR_SHAPE, "y_zero_point '%s' is %s, expected uint8 or int8", yz->name,
                        octet_dtype_name(yz->dtype));
    if (quant_check_param(g, n, s->y_zp, "y_zero_point", yz->dtype, -1, NULL, err) < 0) return -1;
    p->out_s8 = yz->dtype == OCTET_INT8;
    return 0;
}

/* Packs b's matrix j (k x n, row stride n) as n rows of k. */
static void qmm_pack_one(const qmm_params *p, const uint8_t *b, int64_t j, void *buf, oct_qweights *out) {
    p->ks->qweights_pack((int)p->N, (int)p->K, b + j * p->K * p->N, p->b_u8, 1, p->N, buf, out);
}

/* Tiles and workspace offsets; packs a constant b. */
static int qmm_plan(oct_graph *g, oct_node *n, qmm_params *p, octet_error *err) {
    p->ks = quant_kernels();
    p->threads = nn_plan_threads();
    p->pack_bytes = quant_align64(p->ks->qweights_bytes((int)p->N, (int)p->K));
    if (!p->pack_bytes) return oct_fail(err, OCTET_ERR_NOMEM, "packed b size overflows");
    const oct_value *b = oct_in_val(g, n, p->in.b);
    const int b_const = b->kind == OCT_VAL_CONST && (b->data || oct_value_numel(b) == 0);
    if (p->b_mats > (int64_t)(SIZE_MAX / p->pack_bytes) / 2)
        return oct_fail(err, OCTET_ERR_NOMEM, "packed b size overflows");
    if (b_const && p->b_mats > 0) {
        p->packed_buf = aligned_alloc(64, p->pack_bytes * (size_t)p->b_mats);
        p->packed = calloc((size_t)p->b_mats, sizeof *p->packed);
        if (!p->packed_buf || !p->packed) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory packing b");
        for (int64_t j = 0; j < p->b_mats; j++)
            qmm_pack_one(p, b->data, j, (char *)p->packed_buf + (size_t)j * p->pack_bytes, &p->packed[j]);
    }
    /* panels of tm rows of a (K x tm values) within L2, every b column over them; more work items
       for the threads by splitting b's columns. */
    const oct_qpanel *l = p->ks->panel;
    const int64_t per_col = oct_qpanel_stride(l, p->K) / l->nr;
    int64_t tm = (3 << 17) / (per_col > 0 ? per_col : 1);
    if (tm > 512) tm = 512;
    tm = tm / l->nr * l->nr;
    if (tm < l->nr) tm = l->nr;
    if (tm > p->M) tm = p->M > 0 ? p->M : 1;
    int64_t nb = p->N > 0 ? p->N : 1;
    const int64_t want = 2 * (int64_t)p->threads;
    while (p->batches * ((p->M + tm - 1) / tm) * ((p->N + nb - 1) / nb) < want && nb > 32) nb = (nb + 1) / 2;
    nb = (nb + 7) / 8 * 8; /* whole micro-tile rows */
    p->tm = tm;
    p->nb = nb;
    size_t off = quant_align64((size_t)p->N * sizeof(float));
    p->off_bzp = off;
    off += quant_align64((size_t)p->N * sizeof(int32_t));
    p->off_azp = off;
    off += quant_align64((size_t)p->M * sizeof(int32_t));
    p->off_desc = off;
    if (!b_const) {
        off += quant_align64((size_t)p->b_mats * sizeof(oct_qweights));
        p->off_packs = off;
        off += p->pack_bytes * (size_t)p->b_mats;
    }
    p->off_slices = off;
    p->panel_bytes = oct_qpanel_bytes(l, p->K, tm);
    p->slice_bytes = p->panel_bytes + quant_align64((size_t)tm * sizeof(int32_t));
    if (!p->panel_bytes || p->slice_bytes > (SIZE_MAX - off) / (size_t)p->threads)
        return oct_fail(err, OCTET_ERR_NOMEM, "matmul workspace size overflows");
    n->workspace_bytes = off + p->slice_bytes * (size_t)p->threads;
    return 0;
}

static int qmm_infer_common(oct_graph *g, oct_node *n, int qlinear, octet_error *err) {
    nn_reset_params(n);
    if (qlinear ? oct_check_inputs(n, 8, 8, err) : oct_check_inputs(n, 2, 4, err)) return -1;
    if (n->n_out != 1)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s has %d outputs, expects 1", n->op_type, n->n_out);
    qmm_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    p->qlinear = qlinear;
    p->in = qlinear ? QLINEAR_SLOTS : INTEGER_SLOTS;
    if (qlinear) {
        /* the output dtype comes from y_zero_point, checked before the shapes use it */
        const oct_value *yz = oct_in_val(g, n, p->in.y_zp);
        if (!quant_is_8bit(yz->dtype))
            return oct_fail(err, OCTET_ERR_SHAPE, "y_zero_point '%s' is %s, expected uint8 or int8", yz->name,
                            octet_dtype_name(yz->dtype));
    }
    if (quant_require_dtype(g, n, p->in.a, "input a", OCTET_UINT8, OCTET_INT8, err) ||
        quant_require_dtype(g, n, p->in.b, "input b", OCTET_UINT8, OCTET_INT8, err) || qmm_shapes(g, n, p, err) ||
        qmm_check_params(g, n, p, err))
        return -1;
    /* QLinearMatMul applies a fused Relu/Clip through its requantization clamp */
    if (quant_check_epilogue(n, err)) return -1;
    if (!qlinear && n->epi.act != OCT_ACT_NONE)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "MatMulInteger cannot apply a fused activation");
    return qmm_plan(g, n, p, err);
}

static int qlinearmatmul_infer(oct_graph *g, oct_node *n, octet_error *err) {
    return qmm_infer_common(g, n, 1, err);
}
static int matmulinteger_infer(oct_graph *g, oct_node *n, octet_error *err) {
    return qmm_infer_common(g, n, 0, err);
}

static int qmm_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qmm_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "%s run before infer", n->op_type);
    if (p->batches == 0 || p->M == 0 || p->N == 0) return 0;
    const qmm_slots *s = &p->in;
    char *ws = ctx->workspace;
    const uint8_t *a = oct_in(ctx, n, s->a)->data, *b = oct_in(ctx, n, s->b)->data;
    void *y = oct_out(ctx, n, 0)->data;
    float *mult = (float *)ws;
    int32_t *b_zp = (int32_t *)(ws + p->off_bzp), *a_zp = (int32_t *)(ws + p->off_azp);
    /* Operands move to the kernel's domains: a int8 -> uint8 (+128), b uint8 -> int8 (-128). */
    const oct_tensor *az = quant_opt_in(ctx, n, s->a_zp), *bz = quant_opt_in(ctx, n, s->b_zp);
    for (int64_t m = 0; m < p->M; m++) a_zp[m] = quant_zp_at(az, p->a_zp_count > 1 ? m : 0) + (p->a_s8 ? 128 : 0);
    for (int64_t j = 0; j < p->N; j++) b_zp[j] = quant_zp_at(bz, p->b_zp_count > 1 ? j : 0) - (p->b_u8 ? 128 : 0);
    oct_requant rq = {0};
    if (p->qlinear) {
        const float sa = *(const float *)oct_in(ctx, n, s->a_scale)->data;
        const float sy = *(const float *)oct_in(ctx, n, s->y_scale)->data;
        const float *sb = oct_in(ctx, n, s->b_scale)->data;
        if (quant_multipliers(sa, sb, p->b_scale_count, sy, p->b_scale_count, mult, err)) return -1;
        const octet_dtype yt = p->out_s8 ? OCTET_INT8 : OCTET_UINT8;
        rq = (oct_requant){.scale = mult, .scale_per_row = p->b_scale_count > 1, .bias = NULL,
                           .zp = quant_zp_at(oct_in(ctx, n, s->y_zp), 0), .qmin = quant_min(yt),
                           .qmax = quant_max(yt), .out_s8 = p->out_s8};
        quant_act_clamp(n, sy, rq.zp, &rq.qmin, &rq.qmax);
    }
    const int t = nn_run_threads(ctx, p->threads);
    const oct_qweights *packed = p->packed;
    if (!packed) {
        oct_qweights *desc = (oct_qweights *)(ws + p->off_desc);
#pragma omp parallel for num_threads(t) schedule(dynamic, 1) if (t > 1 && p->b_mats > 1)
        for (int64_t j = 0; j < p->b_mats; j++)
            qmm_pack_one(p, b, j, ws + p->off_packs + (size_t)j * p->pack_bytes, &desc[j]);
        packed = desc;
    }
    const int64_t mtiles = (p->M + p->tm - 1) / p->tm, nblocks = (p->N + p->nb - 1) / p->nb;
    const int64_t items = p->batches * mtiles * nblocks;
    const uint8_t flip = p->a_s8 ? 0x80 : 0;
    const int per_row_azp = p->a_zp_count > 1;
    int any_bzp = 0;
    for (int64_t j = 0; j < p->N; j++) any_bzp |= b_zp[j] != 0;
    const size_t esize = p->qlinear ? 1 : sizeof(int32_t);
#pragma omp parallel num_threads(t) if (t > 1 && items > 1)
    {
        char *slice = ws + p->off_slices + (size_t)omp_get_thread_num() * p->slice_bytes;
        void *panel = slice;
        int32_t *colsum = (int32_t *)(slice + p->panel_bytes);
        int64_t have = -1; /* the (batch, m-tile) whose panels are built */
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            const int64_t nbi = it % nblocks, bm = it / nblocks, mt = bm % mtiles, o = bm / mtiles;
            const int64_t m0 = mt * p->tm, tm = p->M - m0 < p->tm ? p->M - m0 : p->tm;
            const int64_t n0 = nbi * p->nb, nr = p->N - n0 < p->nb ? p->N - n0 : p->nb;
            if (have != bm) {
                /* rows m0.. of a are the panel's columns, each K contiguous bytes */
                oct_ref_qpanel_pack(p->ks->panel, a + (p->a_of[o] * p->M + m0) * p->K, 1, p->K, (int)p->K, (int)tm,
                                   flip, panel);
                if (any_bzp) oct_ref_qpanel_colsums(p->ks->panel, panel, (int)p->K, (int)tm, colsum);
                have = bm;
            }
            const oct_qgemm_out out = {.x_zp = a_zp[0], .x_zp_cols = per_row_azp ? a_zp + m0 : NULL, .w_zp = b_zp,
                                       .colsum = any_bzp ? colsum : NULL, .rq = p->qlinear ? &rq : NULL,
                                       .y = (char *)y + (o * p->M * p->N + m0 * p->N + n0) * esize,
                                       .y_rs = 1, .y_cs = p->N};
            p->ks->qgemm_panel(&packed[p->b_of[o]], (int)n0, (int)nr, (int)tm, panel, &out);
        }
    }
    return 0;
}

const oct_op oct_op_qlinear_matmul = {"", "QLinearMatMul", 0, qlinearmatmul_infer, qmm_run, qmm_free};
const oct_op oct_op_matmul_integer = {"", "MatMulInteger", 0, matmulinteger_infer, qmm_run, qmm_free};
