/* Helpers shared by the nn ops; see nn_common.h. */
#include "nn_common.h"

#include "bigmem.h"
#include "steal_range.h"
#include "team.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

int nn_window_read_strides(const oct_node *n, nn_window *w, int allow_dil, octet_error *err) {
    int64_t v[OCTET_MAX_RANK];
    for (int i = 0; i < w->nsp; i++) w->stride[i] = w->dil[i] = 1;
    int c = oct_attr_ints(n, "strides", v, OCTET_MAX_RANK, err);
    if (c == -2) return -1;
    if (c >= 0) {
        if (c != w->nsp)
            return oct_fail(err, OCTET_ERR_FORMAT, "strides has %d values for %d spatial dims", c, w->nsp);
        for (int i = 0; i < c; i++) {
            if (v[i] < 1) return oct_fail(err, OCTET_ERR_FORMAT, "strides[%d] is %lld, must be >= 1", i, (long long)v[i]);
            w->stride[i] = v[i];
        }
    }
    c = oct_attr_ints(n, "dilations", v, OCTET_MAX_RANK, err);
    if (c == -2) return -1;
    if (c >= 0) {
        if (c != w->nsp)
            return oct_fail(err, OCTET_ERR_FORMAT, "dilations has %d values for %d spatial dims", c, w->nsp);
        for (int i = 0; i < c; i++) {
            if (v[i] < 1) return oct_fail(err, OCTET_ERR_FORMAT, "dilations[%d] is %lld, must be >= 1", i, (long long)v[i]);
            if (!allow_dil && v[i] != 1)
                return oct_fail(err, OCTET_ERR_UNSUPPORTED, "dilations other than 1 are not supported here");
            w->dil[i] = v[i];
        }
    }
    return 0;
}

int nn_window_read_pads(const oct_node *n, nn_window *w, octet_error *err) {
    int64_t v[2 * OCTET_MAX_RANK];
    for (int i = 0; i < w->nsp; i++) w->pad_begin[i] = w->pad_end[i] = 0;
    int c = oct_attr_ints(n, "pads", v, 2 * OCTET_MAX_RANK, err);
    if (c == -2) return -1;
    if (c < 0) return 0;
    if (c != 2 * w->nsp)
        return oct_fail(err, OCTET_ERR_FORMAT, "pads has %d values for %d spatial dims", c, w->nsp);
    for (int i = 0; i < c; i++)
        if (v[i] < 0 || v[i] > INT32_MAX)
            return oct_fail(err, OCTET_ERR_UNSUPPORTED, "pads[%d] is %lld (must be 0..2^31)", i, (long long)v[i]);
    for (int i = 0; i < w->nsp; i++) {
        w->pad_begin[i] = v[i];
        w->pad_end[i] = v[i + w->nsp];
    }
    return 0;
}

int nn_window_forward(const oct_node *n, int ceil_mode, int allow_dil, nn_window *w,
                      octet_error *err) {
    if (nn_window_read_strides(n, w, allow_dil, err)) return -1;
    const char *ap = oct_attr_string(n, "auto_pad", "NOTSET");
    int same_upper = strcmp(ap, "SAME_UPPER") == 0, same_lower = strcmp(ap, "SAME_LOWER") == 0;
    int valid = strcmp(ap, "VALID") == 0;
    if (!same_upper && !same_lower && !valid && strcmp(ap, "NOTSET") != 0)
        return oct_fail(err, OCTET_ERR_FORMAT, "unknown auto_pad '%s'", ap);
    if (!same_upper && !same_lower && !valid) {
        if (nn_window_read_pads(n, w, err)) return -1;
    } else {
        for (int i = 0; i < w->nsp; i++) w->pad_begin[i] = w->pad_end[i] = 0;
    }
    for (int i = 0; i < w->nsp; i++) {
        if (w->k[i] < 1 || w->k[i] > INT32_MAX)
            return oct_fail(err, OCTET_ERR_FORMAT, "kernel dim %d is %lld", i, (long long)w->k[i]);
        if (w->in[i] < 1)
            return oct_fail(err, OCTET_ERR_SHAPE, "spatial input dim %d is %lld (empty input)", i, (long long)w->in[i]);
        const int64_t ek = (w->k[i] - 1) * w->dil[i] + 1; /* dilated kernel extent */
        const int64_t s = w->stride[i];
        if (same_upper || same_lower) {
            int64_t out = (w->in[i] + s - 1) / s;
            int64_t total = (out - 1) * s + ek - w->in[i];
            if (total < 0) total = 0;
            w->pad_begin[i] = same_upper ? total / 2 : total - total / 2;
            w->pad_end[i] = total - w->pad_begin[i];
            w->out[i] = out;
            continue;
        }
        const int64_t span = w->in[i] + w->pad_begin[i] + w->pad_end[i] - ek;
        if (span < 0)
            return oct_fail(err, OCTET_ERR_SHAPE,
                            "kernel extent %lld is larger than the padded input (%lld) in spatial dim %d",
                            (long long)ek, (long long)(w->in[i] + w->pad_begin[i] + w->pad_end[i]), i);
        int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
        /* The last window must start inside the input or the leading padding (onnxruntime and
           PyTorch drop a ceil_mode window that would start in the trailing padding). */
        if (ceil_mode && (out - 1) * s >= w->in[i] + w->pad_begin[i]) out--;
        w->out[i] = out;
    }
    return 0;
}

void nn_window_geom(const nn_window *w, oct_conv_geom *g) {
    for (int i = 0; i < 3; i++) {
        g->in[i] = g->out[i] = g->k[i] = g->stride[i] = g->dil[i] = 1;
        g->pad[i] = 0;
    }
    const int off = 3 - w->nsp;
    for (int i = 0; i < w->nsp; i++) {
        g->in[off + i] = w->in[i];
        g->out[off + i] = w->out[i];
        g->k[off + i] = w->k[i];
        g->stride[off + i] = w->stride[i];
        g->dil[off + i] = w->dil[i];
        g->pad[off + i] = w->pad_begin[i];
    }
}

void nn_reset_params(oct_node *n) {
    if (!n->params) return;
    if (n->op && n->op->free_params) n->op->free_params(n->params);
    else free(n->params);
    n->params = NULL;
}

int nn_check_epilogue(oct_graph *g, const oct_node *n, octet_error *err) {
    if (n->epi.residual < 0) return 0;
    if (n->epi.residual >= g->n_values)
        return oct_fail(err, OCTET_ERR_INTERNAL, "fused residual index %d is out of range", n->epi.residual);
    const oct_value *r = &g->values[n->epi.residual], *y = &g->values[n->out[0]];
    int same = r->dtype == OCTET_FLOAT && r->rank == y->rank;
    for (int d = 0; same && d < y->rank; d++) same = r->dims[d] == y->dims[d];
    if (!same)
        return oct_fail(err, OCTET_ERR_SHAPE, "fused residual '%s' does not have the output's shape", r->name);
    return 0;
}

oct_act nn_node_act(const oct_node *n) {
    oct_act a = {(int)n->epi.act, n->epi.alpha, n->epi.beta};
    return a;
}

const float *nn_residual(const oct_run_ctx *ctx, const oct_node *n) {
    return n->epi.residual >= 0 ? (const float *)ctx->tensors[n->epi.residual].data : NULL;
}

static int feeds_channel_split(const oct_graph *g, int v, int depth) {
    static const char *const keep_layout[] = {"QLinearLut", "Relu", "Clip", "Sigmoid", "HardSwish",
                                              "QuantizeLinear", "DequantizeLinear"};
    int consumers = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const oct_node *c = &g->nodes[i];
        if (c->dead || c->n_in < 1 || c->in[0] != v) continue;
        for (int k = 1; k < c->n_in; k++)
            if (c->in[k] == v) return 0; /* read as a second operand: any layout */
        consumers++;
        const int wslot = strcmp(c->op_type, "QLinearConv") == 0 ? 3 : strcmp(c->op_type, "Conv") == 0 ? 1 : -1;
        if (wslot >= 0) {
            if (c->n_in <= wslot || c->in[wslot] < 0) return 0;
            const oct_value *w = &g->values[c->in[wslot]];
            if (oct_attr_int(c, "group", 1) < 2 || w->rank < 3 || w->dims[1] != 1) return 0;
            continue;
        }
        int elementwise = 0;
        for (size_t k = 0; k < sizeof keep_layout / sizeof *keep_layout; k++)
            elementwise |= strcmp(c->op_type, keep_layout[k]) == 0;
        if (!elementwise || depth >= 3 || c->n_out != 1 || !feeds_channel_split(g, c->out[0], depth + 1)) return 0;
    }
    return consumers > 0;
}

int nn_feeds_channel_split(const oct_graph *g, int v) {
    return feeds_channel_split(g, v, 0);
}

int nn_plan_threads(void) {
    int t = omp_get_max_threads();
    return t < 1 ? 1 : t;
}

int nn_run_threads(const oct_run_ctx *ctx, int planned) {
    int t = ctx->threads < planned ? ctx->threads : planned;
    return t < 1 ? 1 : t;
}

size_t nn_float_bytes(int64_t n) {
    if (n < 0 || (uint64_t)n > (SIZE_MAX - 64) / sizeof(float)) return 0;
    return ((size_t)n * sizeof(float) + 63) & ~(size_t)63;
}

int nn_check_int(int64_t v, const char *what, octet_error *err) {
    if (v < 0 || v > INT_MAX)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s is %lld, more than the kernels' int range", what,
                        (long long)v);
    return 0;
}

int nn_require_float(oct_graph *g, const oct_node *n, int i, const char *what, octet_error *err) {
    const oct_value *v = oct_in_val(g, n, i);
    if (v->dtype != OCTET_FLOAT)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s '%s' is %s; only float32 is supported", what, v->name,
                        octet_dtype_name(v->dtype));
    return 0;
}

typedef struct {
    const nn_gemm *g;
    nn_steal *work;
    int64_t cs, rs, mstrips, nstrips; /* column and row slabs, and the strips they cut */
} gemm_tiles;

/* One thread's part of nn_gemm_run: the (row slab, column slab) tiles it claims. */
static void gemm_tiles_part(void *arg, int me, int nthreads) {
    (void)nthreads;
    const gemm_tiles *j = arg;
    const nn_gemm *g = j->g;
    const int64_t cs = j->cs, rs = j->rs, mr = g->arch->mr, nr = g->arch->nr, m = g->m, n = g->n;
    for (int64_t t; (t = nn_steal_next(j->work, me)) >= 0;) {
        const int64_t r = t / cs, c = t % cs;
        const int64_t i0 = r * j->mstrips / rs * mr, i1 = r + 1 == rs ? m : (r + 1) * j->mstrips / rs * mr;
        const int64_t j0 = c * j->nstrips / cs * nr, j1 = c + 1 == cs ? n : (c + 1) * j->nstrips / cs * nr;
        const int mi = (int)(i1 - i0), nj = (int)(j1 - j0);
        oct_epilogue_args te;
        const oct_epilogue_args *tep = NULL;
        if (g->e) {
            te = *g->e;
            if (te.row_bias) te.row_bias += i0;
            if (te.c) te.c += i0 * te.c_rs + j0 * te.c_cs;
            if (te.res) te.res += i0 * te.ldr + j0;
            tep = &te;
        }
        const oct_sgemm_call q = {
            .m = mi, .n = nj, .k = g->k,
            .a = g->a ? g->a + (size_t)i0 * g->lda : NULL, .ap = g->ap ? g->ap + (size_t)i0 * g->k : NULL,
            .lda = g->lda,
            .b = g->b ? g->b + j0 : NULL, .bp = g->bp ? g->bp + (size_t)j0 * g->k : NULL, .ldb = g->ldb,
            .c = g->y + (size_t)i0 * g->ldy + j0, .ldc = g->ldy, .e = tep};
        oct_sgemm_run(g->arch, &q);
    }
}

void nn_gemm_run(const oct_run_ctx *ctx, int threads, const nn_gemm *g) {
    const int m = g->m, n = g->n, k = g->k, mr = g->arch->mr, nr = g->arch->nr;
    if (m <= 0 || n <= 0) return;
    /* Below ~2M multiply-adds (~15 us on one core) a parallel region's start and join cost more
       than they save, and far more when the machine is busy and a thread starts late; unless the
       packed weights are 1 MB or more: a classifier's single row (1280 -> 1000) is paced by
       streaming them, which two cores do in about half the time (MobileNetV2 0.29 -> 0.17 ms). */
    const int64_t macs = (int64_t)m * n * (k > 0 ? k : 1);
    const int64_t streamed = g->bp ? (int64_t)n * k : 0;
    if (macs < 1 << 21 && streamed < 1 << 18) threads = 1;
    /* One thread: one call, whose own blocking packs each operand once. More: about two column
       slabs per thread (columns first: each slab then reuses all of A, which is usually the
       smaller, packed operand); rows are split too when there are too few column strips. Slabs
       are whole strips (packed B and A strips start on them), balanced by count; a narrow last
       strip (49 = 48 + 1) joins its neighbour rather than being a work item of its own. */
    const int64_t want = 2 * (int64_t)threads, mstrips = (m + mr - 1) / mr;
    int64_t nstrips = (n + nr / 2) / nr, cs = 1, rs = 1;
    if (nstrips < 1) nstrips = 1;
    if (threads > 1 && g->split_rows) {
        rs = threads < mstrips ? threads : mstrips;
    } else if (threads > 1) {
        cs = nstrips < want ? nstrips : want;
        if (cs < want) rs = (want + cs - 1) / cs < mstrips ? (want + cs - 1) / cs : mstrips;
    }
    if (cs * rs < 2) threads = 1;
    nn_steal work;
    nn_steal_init(&work, cs * rs, threads); /* at most about 4 * threads tiles */
    gemm_tiles job = {g, &work, cs, rs, mstrips, nstrips};
    oct_parallel(ctx, threads, gemm_tiles_part, &job);
}

static int pack_alloc(nn_packed *pk, size_t per_group, int groups, octet_error *err) {
    pk->arch = NULL;
    pk->data = NULL;
    if (!per_group || per_group > SIZE_MAX / sizeof(float) / (size_t)groups)
        return oct_fail(err, OCTET_ERR_NOMEM, "packed weights size overflows");
    pk->data = oct_big_alloc(nn_float_bytes((int64_t)(per_group * (size_t)groups)));
    if (!pk->data) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory for %zu packed weights",
                                   per_group * (size_t)groups);
    pk->floats_per_group = per_group;
    return 0;
}

int nn_pack_a(nn_packed *pk, const oct_sgemm_arch *arch, int groups, int m, int k, const float *a,
              octet_error *err) {
    if (pack_alloc(pk, oct_sgemm_packed_a_floats(arch, m, k), groups, err)) return -1;
    for (int gi = 0; gi < groups; gi++)
        oct_sgemm_pack_a(arch, m, k, a + (size_t)gi * m * k, k, pk->data + (size_t)gi * pk->floats_per_group);
    pk->arch = arch;
    return 0;
}

int nn_pack_b(nn_packed *pk, int k, int n, const float *b, int b_trans, octet_error *err) {
    const oct_sgemm_arch *arch = oct_sgemm_arch_current();
    if (pack_alloc(pk, oct_sgemm_packed_b_floats(arch, k, n), 1, err)) return -1;
    oct_sgemm_pack_b(arch, k, n, b, b_trans ? k : n, b_trans, pk->data);
    pk->arch = arch;
    return 0;
}

int nn_pack_bt(nn_packed *pk, const oct_sgemm_arch *arch, int groups, int k, int n, const float *bt,
               octet_error *err) {
    if (pack_alloc(pk, oct_sgemm_packed_b_floats(arch, k, n), groups, err)) return -1;
    for (int gi = 0; gi < groups; gi++)
        oct_sgemm_pack_b(arch, k, n, bt + (size_t)gi * n * k, k, 1, pk->data + (size_t)gi * pk->floats_per_group);
    pk->arch = arch;
    return 0;
}

const float *nn_packed_for(const nn_packed *pk, int64_t gi) {
    return pk->data ? pk->data + (size_t)gi * pk->floats_per_group : NULL;
}

const oct_sgemm_arch *nn_packed_arch(const nn_packed *pk) {
    return pk->arch ? pk->arch : oct_sgemm_arch_current();
}

int nn_input_is_const(oct_graph *g, const oct_node *n, int i) {
    const oct_value *v = oct_in_val(g, n, i);
    return v->kind == OCT_VAL_CONST && v->data != NULL;
}
