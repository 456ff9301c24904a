/* com.microsoft QLinearAdd and QLinearMul: C = Q(DQ(A) + DQ(B)) and Q(DQ(A) * DQ(B)) with numpy
   broadcasting; A, B and C of one 8-bit type (uint8 or int8); every scale and zero point per
   tensor. Inputs: A, A_scale, [A_zero_point], B, B_scale, [B_zero_point], C_scale,
   [C_zero_point]. The arithmetic is one or two float32 multiplies per element (see
   qops_kernels.h), within one unit of the exact result; scales are read at run time.

   One operand per plane ([N, C, 1, 1] against [N, C, H, W]: the SE excite of EfficientNet) with
   small planes (7x7) makes the broadcast walker hand out runs too short for the vector loops
   (49 elements run ~5x slower per element than long runs). That operand is then first spread
   over the planes in the workspace, and one contiguous run does the whole tensor (the same
   arithmetic, so the same bytes). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/nn_common.h"
#include "misc_kernels.h"
#include "qops_common.h"
#include "team.h"

typedef struct {
    oct_qbinary_kind kind;
    oct_bcast bc;
    int64_t total;
    int is_s8;
    int threads;
    /* per-plane operand spread over small planes (see above) */
    int spread;       /* 0: no; 1: A is per plane; 2: B is per plane */
    int64_t plane;    /* elements per plane */
    oct_bcast flat;   /* both operands of the output's shape */
} qbin_params;

/* Planes shorter than this are spread (the vector runs handle 64 bytes per step). */
enum { SPREAD_BELOW = 64 };

/* Elements per plane when a value of rank ra and dims da is one value per plane of the output
   (dims equal to the output's on a prefix, then only 1s), else 0. */
static int64_t per_plane(int ra, const int64_t *da, int rank, const int64_t *dims) {
    if (ra != rank) return 0;
    int k = 0;
    while (k < rank && da[k] == dims[k]) k++;
    int64_t plane = 1;
    for (int d = k; d < rank; d++) {
        if (da[d] != 1) return 0;
        plane *= dims[d];
    }
    return k < rank ? plane : 0;
}

static int same_dims(int ra, const int64_t *da, int rank, const int64_t *dims) {
    if (ra != rank) return 0;
    for (int d = 0; d < rank; d++)
        if (da[d] != dims[d]) return 0;
    return 1;
}

static int qbin_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    /* A, A_scale, B, B_scale and C_scale are required */
    if (qops_check_inputs(n, 7, 8, 0x5bu, err)) return -1;
    if (quant_require_dtype(g, n, 0, "input A", OCTET_UINT8, OCTET_INT8, err)) return -1;
    const oct_value *a = oct_in_val(g, n, 0), *b = oct_in_val(g, n, 3);
    if (quant_require_dtype(g, n, 3, "input B", a->dtype, a->dtype, err)) return -1;
    if (qops_check_qparams(g, n, 1, 2, a->dtype, "A", err) || qops_check_qparams(g, n, 4, 5, a->dtype, "B", err) ||
        qops_check_qparams(g, n, 6, 7, a->dtype, "C", err))
        return -1;
    int rank;
    int64_t dims[OCTET_MAX_RANK];
    if (oct_broadcast_shape(a->rank, a->dims, b->rank, b->dims, &rank, dims, err)) return -1;
    qbin_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    p->kind = strcmp(n->op_type, "QLinearMul") == 0 ? OCT_QBIN_MUL : OCT_QBIN_ADD;
    const int ranks[2] = {a->rank, b->rank};
    const int64_t *const in_dims[2] = {a->dims, b->dims};
    if (oct_bcast_plan(&p->bc, rank, dims, 2, ranks, in_dims) < 0)
        return oct_fail(err, OCTET_ERR_SHAPE, "inputs '%s' and '%s' do not broadcast", a->name, b->name);
    p->total = oct_bcast_numel(&p->bc);
    p->is_s8 = a->dtype == OCTET_INT8;
    p->threads = nn_plan_threads();
    oct_set_output(g, n, 0, a->dtype, rank, dims);
    n->workspace_bytes = 0;
    const int64_t pa = per_plane(a->rank, a->dims, rank, dims), pb = per_plane(b->rank, b->dims, rank, dims);
    if (pa > 1 && pa < SPREAD_BELOW && same_dims(b->rank, b->dims, rank, dims)) p->spread = 1, p->plane = pa;
    if (pb > 1 && pb < SPREAD_BELOW && same_dims(a->rank, a->dims, rank, dims)) p->spread = 2, p->plane = pb;
    if (p->spread) {
        const int full[2] = {rank, rank};
        const int64_t *const flat_dims[2] = {dims, dims};
        if (oct_bcast_plan(&p->flat, rank, dims, 2, full, flat_dims) < 0) p->spread = 0;
        else n->workspace_bytes = (size_t)p->total; /* one byte per element, sizes checked by the planner */
    }
    return 0;
}

enum { QBIN_MIN_PER_THREAD = 1 << 14 };

typedef struct {
    const oct_misc_kernel_set *k;
    const oct_qbinary *q;
    const oct_bcast *bc;
    const uint8_t *a, *b;
    uint8_t *y;
    int64_t total, pieces;
} qbin_job;

static void qbin_piece(void *arg, int64_t i, int tid) {
    (void)tid;
    const qbin_job *j = arg;
    int64_t lo, hi;
    qops_split(j->total, j->pieces, i, &lo, &hi);
    j->k->qbinary(j->q, j->bc, j->a, j->b, j->y, lo, hi);
}

static int qbin_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qbin_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "%s run before infer", n->op_type);
    const qops_qparams qa = qops_run_qparams(ctx, n, 1, 2), qb = qops_run_qparams(ctx, n, 4, 5),
                       qc = qops_run_qparams(ctx, n, 6, 7);
    if (qops_check_scale_value(qa.scale, "A", err) || qops_check_scale_value(qb.scale, "B", err) ||
        qops_check_scale_value(qc.scale, "C", err))
        return -1;
    const octet_dtype t = p->is_s8 ? OCTET_INT8 : OCTET_UINT8;
    oct_qbinary q = {.kind = p->kind, .is_s8 = p->is_s8, .a_zp = qa.zp, .b_zp = qb.zp, .y_zp = qc.zp,
                     .qmin = quant_min(t), .qmax = quant_max(t)};
    if (p->kind == OCT_QBIN_ADD) {
        q.ma = qa.scale / qc.scale;
        q.mb = qb.scale / qc.scale;
    } else {
        q.ma = qa.scale * qb.scale / qc.scale;
        q.mb = 0.f;
    }
    if (!isfinite(q.ma) || !isfinite(q.mb))
        return oct_fail(err, OCTET_ERR_FORMAT, "%s multiplier is not finite (scales %g, %g, output %g)", n->op_type,
                        (double)qa.scale, (double)qb.scale, (double)qc.scale);
    const uint8_t *a = oct_in(ctx, n, 0)->data, *b = oct_in(ctx, n, 3)->data;
    uint8_t *y = oct_out(ctx, n, 0)->data;
    const oct_bcast *bc = &p->bc;
    uint8_t *spread = p->spread ? ctx->workspace : NULL;
    if (spread) {
        bc = &p->flat;
        const uint8_t *per = p->spread == 1 ? a : b;
        if (p->spread == 1) a = spread;
        else b = spread;
        /* one memset per plane: tens of bytes each */
        for (int64_t i = 0; i < p->total / p->plane; i++) memset(spread + i * p->plane, per[i], (size_t)p->plane);
    }
    const int t_run = nn_run_threads(ctx, p->threads);
    int64_t pieces = p->total / QBIN_MIN_PER_THREAD;
    if (pieces > t_run) pieces = t_run;
    if (pieces < 1) pieces = 1;
    qbin_job j = {oct_misc_kernels(), &q, bc, a, b, y, p->total, pieces};
    oct_parallel_for(ctx, t_run, pieces, qbin_piece, &j);
    return 0;
}

const oct_op oct_op_qlinear_add = {"com.microsoft", "QLinearAdd", OCT_OP_TEAM, qbin_infer, qbin_run, NULL};
const oct_op oct_op_qlinear_mul = {"com.microsoft", "QLinearMul", OCT_OP_TEAM, qbin_infer, qbin_run, NULL};
