/* octet.QLinearInstanceNormalization: Y = Q(InstanceNormalization(DQ(x), scale, B)), epsilon as
   InstanceNormalization. Inputs: x, x_scale, [x_zero_point], scale (float [C]), B (float [C]),
   y_scale, y_zero_point; x per tensor, uint8 or int8; the output has y_zero_point's type. Any
   fused activation of the epilogue (Relu, Clip, LeakyRelu, Sigmoid, SiLU, HardSwish, HardSigmoid,
   Tanh) is applied before the quantization.

   Per (n, c) the statistics are exact integer sums of the 8-bit values (mean and variance then
   in double). Normalisation is affine in the input, and an input channel holds at most 256
   distinct values, so the channel's normalise-activate-quantize map is a 256-entry table built
   in double (exact with respect to the float reference) and applied with one byte lookup per
   element: no float copy of the volume, not even a tile. Both passes run the vector kernels of
   the selected ISA (norm_kernels.h qsums, misc_kernels.h qlut); threads take whole planes, or
   share each plane in chunks when there are few. */
#include <math.h>
#include <stdlib.h>

#include "../nn/nn_common.h"
#include "misc_kernels.h"
#include "norm_kernels.h"
#include "qops_common.h"

enum { S_X = 0, S_XS, S_XZ, S_SCALE, S_B, S_YS, S_YZ };

/* Bytes per chunk when threads share a plane. */
enum { QIN_CHUNK = 1 << 16 };

static int64_t qin_chunk_len(int64_t vol, int64_t c) {
    const int64_t left = vol - c * QIN_CHUNK;
    return left < QIN_CHUNK ? left : QIN_CHUNK;
}

typedef struct {
    int64_t N, C, vol;
    int64_t chunks; /* ceil(vol / QIN_CHUNK) */
    int x_s8, y_s8;
    float eps;
    int threads;
} qin_params;

static int qin_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (qops_check_inputs(n, 7, 7, 0x7bu, err)) return -1;
    if (quant_require_dtype(g, n, S_X, "input x", OCTET_UINT8, OCTET_INT8, err)) return -1;
    const oct_value *x = oct_in_val(g, n, S_X), *yz = oct_in_val(g, n, S_YZ);
    if (!quant_is_8bit(yz->dtype))
        return oct_fail(err, OCTET_ERR_SHAPE, "y_zero_point '%s' is %s, expected uint8 or int8", yz->name,
                        octet_dtype_name(yz->dtype));
    if (qops_check_qparams(g, n, S_XS, S_XZ, x->dtype, "x", err) || qops_check_qparams(g, n, S_YS, S_YZ, yz->dtype, "y", err))
        return -1;
    if (x->rank < 3)
        return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' has rank %d; instance normalization needs (N, C, D1, ...)",
                        x->name, x->rank);
    const int64_t C = x->dims[1];
    for (int i = S_SCALE; i <= S_B; i++) {
        if (nn_require_float(g, n, i, i == S_SCALE ? "scale" : "B", err)) return -1;
        const oct_value *v = oct_in_val(g, n, i);
        if (v->rank != 1 || v->dims[0] != C)
            return oct_fail(err, OCTET_ERR_SHAPE, "%s '%s' must have shape [%lld]", i == S_SCALE ? "scale" : "B", v->name,
                            (long long)C);
    }
    if (n->epi.residual >= 0)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "QLinearInstanceNormalization cannot apply a fused residual");
    qin_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    p->N = x->dims[0];
    p->C = C;
    p->vol = 1;
    for (int d = 2; d < x->rank; d++) p->vol *= x->dims[d];
    p->x_s8 = x->dtype == OCTET_INT8;
    p->y_s8 = yz->dtype == OCTET_INT8;
    p->eps = oct_attr_float(n, "epsilon", 1e-5f);
    if (!(p->eps >= 0.f)) return oct_fail(err, OCTET_ERR_FORMAT, "epsilon is %g; it must be >= 0", (double)p->eps);
    p->threads = nn_plan_threads();
    p->chunks = (p->vol + QIN_CHUNK - 1) / QIN_CHUNK;
    oct_set_output(g, n, 0, yz->dtype, x->rank, x->dims);
    /* the chunk sums of one plane, when threads share it */
    n->workspace_bytes = (size_t)p->chunks * 2 * sizeof(int64_t);
    return 0;
}

/* The epilogue's activation in double (the kinds of oct_act_kind). */
static double qin_act(const oct_epilogue *e, double v) {
    switch (e->act) {
    case OCT_ACT_RELU: return v > 0.0 ? v : 0.0;
    case OCT_ACT_CLIP: return v < e->alpha ? e->alpha : (v > e->beta ? e->beta : v);
    case OCT_ACT_LEAKY_RELU: return v < 0.0 ? e->alpha * v : v;
    case OCT_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case OCT_ACT_SILU: return v / (1.0 + exp(-v));
    case OCT_ACT_HARD_SWISH: {
        const double t = v / 6.0 + 0.5;
        return v * (t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t));
    }
    case OCT_ACT_HARD_SIGMOID: {
        const double t = e->alpha * v + e->beta;
        return t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
    }
    case OCT_ACT_TANH: return tanh(v);
    default: return v;
    }
}

/* What a run needs: tensors, quantization, kernels. */
typedef struct {
    const oct_norm_kernel_set *k;
    const oct_misc_kernel_set *misc;
    const qin_params *p;
    qops_qparams xq, yq;
    const float *gamma, *beta;
    const uint8_t *x;
    uint8_t *y;
    int32_t qmin, qmax;
    oct_epilogue epi;
} qin_job;

/* The normalise-activate-quantize table of plane it, from its exact integer sums. */
static void plane_table(const qin_job *j, int64_t it, int64_t s1, int64_t s2, uint8_t table[256]) {
    const qin_params *p = j->p;
    const int64_t c = it % p->C, vol = p->vol;
    /* Statistics of the integer values, then of the dequantized ones. */
    const double mq = vol > 0 ? (double)s1 / (double)vol : 0.0;
    double vq = vol > 0 ? (double)s2 / (double)vol - mq * mq : 0.0;
    if (vq < 0.0) vq = 0.0;
    const double sx = j->xq.scale, mean = (mq - j->xq.zp) * sx, var = vq * sx * sx;
    const double inv = 1.0 / sqrt(var + (double)p->eps);
    const double gc = j->gamma[c], bc = j->beta[c];
    for (int b = 0; b < 256; b++) {
        const double xr = (double)(oct_q8_value((uint8_t)b, p->x_s8) - j->xq.zp) * sx;
        const double v = qin_act(&j->epi, (xr - mean) * inv * gc + bc) / (double)j->yq.scale;
        const int32_t q = oct_q8_round(v, j->yq.zp, j->qmin, j->qmax);
        table[b] = p->y_s8 ? (uint8_t)(int8_t)q : (uint8_t)q;
    }
}

/* One whole plane by one thread. */
static void qnorm_plane(const qin_job *j, int64_t it) {
    const int64_t vol = j->p->vol;
    int64_t s1 = 0, s2 = 0;
    j->k->qsums(j->x + it * vol, j->p->x_s8, vol, &s1, &s2);
    uint8_t table[256];
    plane_table(j, it, s1, s2, table);
    j->misc->qlut(j->x + it * vol, vol, table, j->y + it * vol);
}

/* Few planes for many threads: all threads share each plane in chunks (integer sums are exact,
   so the split changes nothing). ws holds two sums per chunk. */
static void qnorm_planes_shared(const qin_job *j, int64_t items, int64_t chunks, int64_t *ws, int t) {
    const int64_t vol = j->p->vol;
#pragma omp parallel num_threads(t)
    for (int64_t it = 0; it < items; it++) {
        const uint8_t *xc = j->x + it * vol;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            ws[2 * c] = ws[2 * c + 1] = 0;
            j->k->qsums(xc + c * QIN_CHUNK, j->p->x_s8, qin_chunk_len(vol, c), &ws[2 * c], &ws[2 * c + 1]);
        }
        int64_t s1 = 0, s2 = 0;
        for (int64_t c = 0; c < chunks; c++) {
            s1 += ws[2 * c];
            s2 += ws[2 * c + 1];
        }
        uint8_t table[256];
        plane_table(j, it, s1, s2, table);
        /* the barrier closing this loop keeps ws until every thread has read it */
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++)
            j->misc->qlut(xc + c * QIN_CHUNK, qin_chunk_len(vol, c), table, j->y + it * vol + c * QIN_CHUNK);
    }
}

static int qin_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qin_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "QLinearInstanceNormalization run before infer");
    const octet_dtype yt = p->y_s8 ? OCTET_INT8 : OCTET_UINT8;
    const qin_job j = {
        .k = oct_norm_kernels(),
        .misc = oct_misc_kernels(),
        .p = p,
        .xq = qops_run_qparams(ctx, n, S_XS, S_XZ),
        .yq = qops_run_qparams(ctx, n, S_YS, S_YZ),
        .gamma = oct_in(ctx, n, S_SCALE)->data,
        .beta = oct_in(ctx, n, S_B)->data,
        .x = oct_in(ctx, n, S_X)->data,
        .y = oct_out(ctx, n, 0)->data,
        .qmin = quant_min(yt),
        .qmax = quant_max(yt),
        .epi = n->epi,
    };
    if (qops_check_scale_value(j.xq.scale, "x", err) || qops_check_scale_value(j.yq.scale, "y", err)) return -1;
    const int64_t items = p->N * p->C;
    if (items == 0 || p->vol == 0) return 0;
    int t = nn_run_threads(ctx, p->threads);
    if (items * p->vol <= (1 << 15)) t = 1; /* not worth waking threads */
    /* Whole planes per thread unless that leaves threads idle for long. */
    if (t > 1 && items % t != 0 && items < 8 * t && p->chunks >= t) {
        qnorm_planes_shared(&j, items, p->chunks, ctx->workspace, t);
        return 0;
    }
#pragma omp parallel for num_threads(t) schedule(dynamic, 1) if (t > 1)
    for (int64_t it = 0; it < items; it++) qnorm_plane(&j, it);
    return 0;
}

const oct_op oct_op_qlinear_instance_norm = {"octet", "QLinearInstanceNormalization", 0, qin_infer, qin_run, NULL};
