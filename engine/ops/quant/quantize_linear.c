/* QuantizeLinear and DequantizeLinear (opsets 10 and 13; later opsets as far as they agree):
   per tensor, or per axis from opset 13 (a 1-D scale along `axis`, default 1).
   QuantizeLinear: y = saturate(rint(x / y_scale) + y_zero_point), float32 division, ties to even;
   the output type is y_zero_point's (uint8 when absent). DequantizeLinear: y = (x - zp) * scale
   for uint8, int8 and int32 x (int32 has no zero point: it must be 0). Scales and zero points are
   read at run time, so they may be computed by the graph. */
#include <stdlib.h>

#include "misc_kernels.h"
#include "quant_common.h"
#include "team.h"

typedef struct {
    int per_axis;
    int64_t channels, outer, inner; /* x = [outer, channels, inner]; per tensor: [1, 1, numel] */
    int64_t zp_count;               /* 0 (no zero point), 1 or channels */
} qaxis_params;

/* Elements per parallel work item. */
enum { QCHUNK = 1 << 16 };

/* Shape checks shared by both ops: input 0 is the data, 1 the scale, 2 the optional zero point
   whose dtype must be zp_dtype (0: any 8-bit type). */
static int qaxis_infer(oct_graph *g, oct_node *n, octet_dtype zp_dtype, octet_error *err) {
    free(n->params);
    n->params = NULL;
    if (oct_check_inputs(n, 2, 3, err)) return -1;
    if (n->n_out != 1) return oct_fail(err, OCTET_ERR_FORMAT, "%s has %d outputs, expects 1", n->op_type, n->n_out);
    if (oct_attr_int(n, "block_size", 0) != 0)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "blocked quantization (block_size) is not supported");
    const oct_value *x = oct_in_val(g, n, 0), *s = oct_in_val(g, n, 1);
    const int64_t numel = oct_value_numel(x);
    if (numel < 0) return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' has no valid shape", x->name);
    qaxis_params p = {.per_axis = 0, .channels = 1, .outer = 1, .inner = numel};
    if (s->dtype != OCTET_FLOAT)
        return oct_fail(err, OCTET_ERR_SHAPE, "scale '%s' is %s, expected float32", s->name, octet_dtype_name(s->dtype));
    const int64_t s_count = oct_value_numel(s);
    if (s_count != 1) {
        if (s->rank != 1)
            return oct_fail(err, OCTET_ERR_SHAPE, "scale '%s' must be a scalar or a 1-D tensor, has rank %d",
                            s->name, s->rank);
        if (g->opset < 13)
            return oct_fail(err, OCTET_ERR_SHAPE, "scale '%s' has %lld values; per-axis quantization needs opset 13",
                            s->name, (long long)s_count);
        int64_t axis;
        if (oct_norm_axis(oct_attr_int(n, "axis", 1), x->rank, &axis, err)) return -1;
        if (x->dims[axis] != s_count)
            return oct_fail(err, OCTET_ERR_SHAPE, "scale '%s' has %lld values but axis %lld of '%s' has %lld",
                            s->name, (long long)s_count, (long long)axis, x->name, (long long)x->dims[axis]);
        p.per_axis = 1;
        p.channels = s_count;
        for (int d = 0; d < axis; d++) p.outer *= x->dims[d];
        p.inner = 1;
        for (int d = (int)axis + 1; d < x->rank; d++) p.inner *= x->dims[d];
    }
    if (oct_node_has_input(n, 2)) {
        const oct_value *z = oct_in_val(g, n, 2);
        if (zp_dtype ? z->dtype != zp_dtype : !quant_is_8bit(z->dtype))
            return oct_fail(err, OCTET_ERR_SHAPE, "zero point '%s' is %s, expected %s", z->name,
                            octet_dtype_name(z->dtype), zp_dtype ? octet_dtype_name(zp_dtype) : "uint8 or int8");
        const int64_t z_count = oct_value_numel(z);
        if (z_count != 1 && (z->rank != 1 || z_count != p.channels))
            return oct_fail(err, OCTET_ERR_SHAPE, "zero point '%s' has %lld values, the scale has %lld",
                            z->name, (long long)z_count, (long long)s_count);
        p.zp_count = z_count;
    }
    qaxis_params *pp = malloc(sizeof *pp);
    if (!pp) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    *pp = p;
    n->params = pp;
    return 0;
}

/* Work items: every (outer, channel) block split into chunks of at most QCHUNK elements. */
typedef struct {
    int64_t per_block, chunk, items;
} qaxis_split;

static qaxis_split qaxis_items(const qaxis_params *p) {
    qaxis_split s;
    s.chunk = p->inner < QCHUNK ? p->inner : QCHUNK;
    if (s.chunk < 1) s.chunk = 1;
    s.per_block = (p->inner + s.chunk - 1) / s.chunk;
    s.items = p->outer * p->channels * s.per_block;
    return s;
}

/* Item it: its channel, first element and length. */
static void qaxis_item(const qaxis_params *p, const qaxis_split *s, int64_t it, int64_t *c, int64_t *off,
                       int64_t *len) {
    const int64_t blk = it / s->per_block, start = (it % s->per_block) * s->chunk;
    *c = blk % p->channels;
    *off = blk * p->inner + start;
    *len = p->inner - start < s->chunk ? p->inner - start : s->chunk;
}

/* What the items of a (de)quantization share. */
typedef struct {
    const qaxis_params *p;
    const qaxis_split *s;
    const oct_tensor *x;
    oct_tensor *y;
    const float *scale;
    const oct_tensor *zt;
    const oct_misc_kernel_set *k;
} qaxis_job;

/* Threads for a run: one below QCHUNK values in all. */
static int qaxis_threads(const oct_run_ctx *ctx, const qaxis_params *p, const qaxis_split *s) {
    return ctx->threads > 1 && s->items > 1 && p->inner * p->channels * p->outer > QCHUNK ? ctx->threads : 1;
}

/* Item it's run [off, off + len) and its channel's scale and zero point. */
static void qaxis_job_item(const qaxis_job *j, int64_t it, int64_t *off, int64_t *len, float *sc, int32_t *zp) {
    const qaxis_params *p = j->p;
    int64_t c;
    qaxis_item(p, j->s, it, &c, off, len);
    *sc = j->scale[p->per_axis ? c : 0];
    *zp = quant_zp_at(j->zt, p->zp_count > 1 ? c : 0);
}

static void quantize_item(void *arg, int64_t it, int tid) {
    (void)tid;
    const qaxis_job *j = arg;
    int64_t off, len;
    float sc;
    int32_t zp;
    qaxis_job_item(j, it, &off, &len, &sc, &zp);
    const int out_s8 = j->y->dtype == OCTET_INT8;
    if (j->x->dtype == OCTET_FLOAT) {
        const float *xs = (const float *)j->x->data + off;
        if (out_s8) j->k->quantize_f32_s8(xs, len, sc, zp, (int8_t *)j->y->data + off);
        else j->k->quantize_f32_u8(xs, len, sc, zp, (uint8_t *)j->y->data + off);
    } else {
        const int32_t *xs = (const int32_t *)j->x->data + off;
        if (out_s8) oct_ref_quantize_s32_s8(xs, len, sc, zp, (int8_t *)j->y->data + off);
        else oct_ref_quantize_s32_u8(xs, len, sc, zp, (uint8_t *)j->y->data + off);
    }
}

static void dequantize_item(void *arg, int64_t it, int tid) {
    (void)tid;
    const qaxis_job *j = arg;
    int64_t off, len;
    float sc;
    int32_t zp;
    qaxis_job_item(j, it, &off, &len, &sc, &zp);
    float *y = (float *)j->y->data + off;
    switch (j->x->dtype) {
    case OCTET_UINT8: j->k->dequantize_u8((const uint8_t *)j->x->data + off, len, sc, zp, y); break;
    case OCTET_INT8: j->k->dequantize_s8((const int8_t *)j->x->data + off, len, sc, zp, y); break;
    default: oct_ref_dequantize_s32((const int32_t *)j->x->data + off, len, sc, zp, y); break;
    }
}

static int quantize_infer(oct_graph *g, oct_node *n, octet_error *err) {
    if (qaxis_infer(g, n, 0, err)) return -1;
    if (quant_require_dtype(g, n, 0, "input", OCTET_FLOAT, OCTET_INT32, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    const octet_dtype out = oct_node_has_input(n, 2) ? oct_in_val(g, n, 2)->dtype : OCTET_UINT8;
    oct_set_output(g, n, 0, out, x->rank, x->dims);
    return 0;
}

static int quantize_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qaxis_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "QuantizeLinear run before infer");
    const oct_tensor *x = oct_in(ctx, n, 0), *zt = quant_opt_in(ctx, n, 2);
    const float *scale = oct_in(ctx, n, 1)->data;
    oct_tensor *y = oct_out(ctx, n, 0);
    const qaxis_split s = qaxis_items(p);
    qaxis_job j = {p, &s, x, y, scale, zt, oct_misc_kernels()};
    oct_parallel_for(ctx, qaxis_threads(ctx, p, &s), s.items, quantize_item, &j);
    return 0;
}

static int dequantize_infer(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 2, 3, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (!quant_is_8bit(x->dtype) && x->dtype != OCTET_INT32)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "input '%s' is %s; DequantizeLinear takes uint8, int8 or int32",
                        x->name, octet_dtype_name(x->dtype));
    if (qaxis_infer(g, n, x->dtype, err)) return -1;
    oct_set_output(g, n, 0, OCTET_FLOAT, x->rank, x->dims);
    return 0;
}

static int dequantize_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qaxis_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "DequantizeLinear run before infer");
    const oct_tensor *x = oct_in(ctx, n, 0), *zt = quant_opt_in(ctx, n, 2);
    const float *scale = oct_in(ctx, n, 1)->data;
    if (x->dtype == OCTET_INT32)
        for (int64_t j = 0; j < p->zp_count; j++)
            if (quant_zp_at(zt, j) != 0)
                return oct_fail(err, OCTET_ERR_FORMAT, "x_zero_point[%lld] is %d; int32 input has no zero point (must be 0)",
                                (long long)j, quant_zp_at(zt, j));
    const qaxis_split s = qaxis_items(p);
    qaxis_job j = {p, &s, x, oct_out(ctx, n, 0), scale, zt, oct_misc_kernels()};
    oct_parallel_for(ctx, qaxis_threads(ctx, p, &s), s.items, dequantize_item, &j);
    return 0;
}

const oct_op oct_op_quantize_linear = {"", "QuantizeLinear", OCT_OP_TEAM, quantize_infer, quantize_run, NULL};
const oct_op oct_op_dequantize_linear = {"", "DequantizeLinear", OCT_OP_TEAM, dequantize_infer, dequantize_run, NULL};
