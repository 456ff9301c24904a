/* MaxPool (opsets 1..12: float, and uint8/int8 from 12; optional int64 Indices output with
   storage_order) and AveragePool (opsets 1..11: pads, auto_pad, ceil_mode, count_include_pad).
   Both run one channel plane per work item. */
#include <stdlib.h>

#include "misc_kernels.h"
#include "nn_common.h"
#include "team.h"

typedef struct {
    oct_conv_geom geom;
    int64_t pad_end[3];
    int64_t planes, in_vol, out_vol;
    int count_include_pad, storage_order;
    int unit_dilation;  /* the fast kernels (misc_kernels.h) take dilation 1 only */
    octet_dtype dtype;
    int threads;
} pool_params;

static int pool_infer(oct_graph *g, oct_node *n, int is_max, octet_error *err) {
    nn_reset_params(n);
    if (oct_check_inputs(n, 1, 1, err)) return -1;
    if (n->n_out < 1 || n->n_out > (is_max ? 2 : 1))
        return oct_fail(err, OCTET_ERR_FORMAT, "%s has %d outputs", n->op_type, n->n_out);
    const oct_value *x = oct_in_val(g, n, 0);
    if (x->dtype != OCTET_FLOAT && !(is_max && (x->dtype == OCTET_UINT8 || x->dtype == OCTET_INT8)))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s input '%s' has unsupported type %s", n->op_type, x->name,
                        octet_dtype_name(x->dtype));
    if (x->rank < 3 || x->rank > 5)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s input '%s' has rank %d; 1-D to 3-D pooling is supported",
                        n->op_type, x->name, x->rank);
    nn_window win = {.nsp = x->rank - 2};
    int64_t ks[OCTET_MAX_RANK];
    int nks = oct_attr_ints(n, "kernel_shape", ks, OCTET_MAX_RANK, err);
    if (nks == -2) return -1;
    if (nks != win.nsp)
        return oct_fail(err, OCTET_ERR_FORMAT, "kernel_shape must have %d values (has %d)", win.nsp, nks < 0 ? 0 : nks);
    for (int i = 0; i < win.nsp; i++) {
        win.in[i] = x->dims[2 + i];
        win.k[i] = ks[i];
    }
    const int64_t ceil_mode = oct_attr_int(n, "ceil_mode", 0);
    if (nn_window_forward(n, ceil_mode != 0, is_max, &win, err)) return -1;
    pool_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    nn_window_geom(&win, &p->geom);
    for (int i = 0; i < 3; i++) p->pad_end[i] = 0;
    for (int i = 0; i < win.nsp; i++) p->pad_end[3 - win.nsp + i] = win.pad_end[i];
    p->planes = x->dims[0] * x->dims[1];
    p->in_vol = oct_geom_in_vol(&p->geom);
    p->out_vol = oct_geom_out_vol(&p->geom);
    p->count_include_pad = oct_attr_int(n, "count_include_pad", 0) != 0;
    p->storage_order = (int)oct_attr_int(n, "storage_order", 0);
    if (p->storage_order != 0 && p->storage_order != 1)
        return oct_fail(err, OCTET_ERR_FORMAT, "storage_order must be 0 or 1, is %d", p->storage_order);
    p->dtype = x->dtype;
    p->unit_dilation = p->geom.dil[0] == 1 && p->geom.dil[1] == 1 && p->geom.dil[2] == 1;
    p->threads = nn_plan_threads();
    int64_t dims[OCTET_MAX_RANK] = {x->dims[0], x->dims[1]};
    for (int i = 0; i < win.nsp; i++) dims[2 + i] = win.out[i];
    oct_set_output(g, n, 0, x->dtype, x->rank, dims);
    if (n->n_out > 1 && n->out[1] >= 0) oct_set_output(g, n, 1, OCTET_INT64, x->rank, dims);
    n->workspace_bytes = 0;
    return 0;
}

static int maxpool_infer(oct_graph *g, oct_node *n, octet_error *err) { return pool_infer(g, n, 1, err); }
static int avgpool_infer(oct_graph *g, oct_node *n, octet_error *err) { return pool_infer(g, n, 0, err); }

/* Turns plane offsets into the flat indices of the whole input, column-major within the plane
   when storage_order is 1 (onnxruntime's convention). */
static void finish_indices(const pool_params *p, int64_t plane, int64_t *idx) {
    const oct_conv_geom *g = &p->geom;
    for (int64_t q = 0; q < p->out_vol; q++) {
        int64_t r = idx[q];
        if (r < 0) continue;
        if (p->storage_order == 1) {
            int64_t i2 = r % g->in[2], i1 = (r / g->in[2]) % g->in[1], i0 = r / (g->in[2] * g->in[1]);
            r = i0 + i1 * g->in[0] + i2 * g->in[0] * g->in[1];
        }
        idx[q] = plane * p->in_vol + r;
    }
}

typedef struct {
    const pool_params *p;
    const void *x;
    void *y;
    int64_t *idx; /* MaxPool's indices output, or NULL */
    const oct_misc_kernel_set *k;
} pool_job;

/* Plane c through the SIMD max kernels (no indices, unit dilation). */
static void maxpool_plane_fast(void *arg, int64_t c, int tid) {
    (void)tid;
    const pool_job *j = arg;
    const pool_params *p = j->p;
    if (p->dtype == OCTET_FLOAT)
        j->k->maxpool_f32(&p->geom, (const float *)j->x + c * p->in_vol, (float *)j->y + c * p->out_vol);
    else if (p->dtype == OCTET_UINT8)
        j->k->maxpool_u8(&p->geom, (const uint8_t *)j->x + c * p->in_vol, (uint8_t *)j->y + c * p->out_vol);
    else
        j->k->maxpool_s8(&p->geom, (const int8_t *)j->x + c * p->in_vol, (int8_t *)j->y + c * p->out_vol);
}

/* Plane c through the ref loops, with the indices when asked for. */
static void maxpool_plane_ref(void *arg, int64_t c, int tid) {
    (void)tid;
    const pool_job *j = arg;
    const pool_params *p = j->p;
    int64_t *ic = j->idx ? j->idx + c * p->out_vol : NULL;
    if (p->dtype == OCTET_FLOAT)
        oct_ref_maxpool_f32(&p->geom, (const float *)j->x + c * p->in_vol, (float *)j->y + c * p->out_vol, ic);
    else if (p->dtype == OCTET_UINT8)
        oct_ref_maxpool_u8(&p->geom, (const uint8_t *)j->x + c * p->in_vol, (uint8_t *)j->y + c * p->out_vol, ic);
    else
        oct_ref_maxpool_s8(&p->geom, (const int8_t *)j->x + c * p->in_vol, (int8_t *)j->y + c * p->out_vol, ic);
    if (ic) finish_indices(p, c, ic);
}

static void avgpool_plane(void *arg, int64_t c, int tid) {
    (void)tid;
    const pool_job *j = arg;
    const pool_params *p = j->p;
    const float *x = (const float *)j->x + c * p->in_vol;
    float *y = (float *)j->y + c * p->out_vol;
    if (p->unit_dilation) j->k->avgpool_f32(&p->geom, p->pad_end, p->count_include_pad, x, y);
    else oct_ref_avgpool_f32(&p->geom, p->pad_end, p->count_include_pad, x, y);
}

static int maxpool_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const pool_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "MaxPool run before infer");
    const void *x = oct_in(ctx, n, 0)->data;
    void *y = oct_out(ctx, n, 0)->data;
    int64_t *idx = n->n_out > 1 && n->out[1] >= 0 ? oct_out(ctx, n, 1)->data : NULL;
    pool_job j = {p, x, y, idx, oct_misc_kernels()};
    oct_parallel_for(ctx, nn_run_threads(ctx, p->threads), p->planes,
                     !idx && p->unit_dilation ? maxpool_plane_fast : maxpool_plane_ref, &j);
    return 0;
}

static int avgpool_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const pool_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "AveragePool run before infer");
    const float *x = oct_in(ctx, n, 0)->data;
    float *y = oct_out(ctx, n, 0)->data;
    pool_job j = {p, x, y, NULL, oct_misc_kernels()};
    oct_parallel_for(ctx, nn_run_threads(ctx, p->threads), p->planes, avgpool_plane, &j);
    return 0;
}

const oct_op oct_op_max_pool = {"", "MaxPool", OCT_OP_TEAM, maxpool_infer, maxpool_run, NULL};
const oct_op oct_op_average_pool = {"", "AveragePool", OCT_OP_TEAM, avgpool_infer, avgpool_run, NULL};
