/* Clip. Opset 6 reads min/max from attributes; opset 11+ from optional scalar inputs, which may
   be computed at run time, so they are read in run(). Float32, and the integer dtypes from 12. */
#include <float.h>
#include <math.h>

#include "math_ops.h"

typedef struct {
    int bounds_are_inputs;
    float attr_min, attr_max;
} clip_params;

static int clip_infer(oct_graph *g, oct_node *n, octet_error *err) {
    int from_inputs = g->opset >= 11;
    if (oct_check_inputs(n, 1, from_inputs ? 3 : 1, err) < 0) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (!oct_math_is_numeric(x->dtype) || (!from_inputs && x->dtype != OCTET_FLOAT))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "Clip does not support %s input '%s'",
                        octet_dtype_name(x->dtype), x->name);
    for (int i = 1; i < n->n_in; i++) {
        if (!oct_node_has_input(n, i)) continue;
        const oct_value *b = oct_in_val(g, n, i);
        if (b->dtype != x->dtype)
            return oct_fail(err, OCTET_ERR_SHAPE, "Clip %s '%s' is %s but the input is %s",
                            i == 1 ? "min" : "max", b->name, octet_dtype_name(b->dtype),
                            octet_dtype_name(x->dtype));
        if (oct_value_numel(b) != 1)
            return oct_fail(err, OCTET_ERR_SHAPE, "Clip %s '%s' must be a scalar, has %lld elements",
                            i == 1 ? "min" : "max", b->name, (long long)oct_value_numel(b));
    }
    clip_params *p = oct_math_new_params(n, sizeof *p, err);
    if (!p) return -1;
    p->bounds_are_inputs = from_inputs;
    p->attr_min = oct_attr_float(n, "min", -FLT_MAX);
    p->attr_max = oct_attr_float(n, "max", FLT_MAX);
    oct_set_output(g, n, 0, x->dtype, x->rank, x->dims);
    return 0;
}

typedef struct {
    octet_dtype dt;
    float fmin, fmax;
    int64_t imin, imax;
    const void *x;
    void *y;
} clip_job;

static void clip_range(const void *arg, int64_t b, int64_t e) {
    const clip_job *j = arg;
    size_t es = octet_dtype_size(j->dt);
    const void *x = (const char *)j->x + b * (int64_t)es;
    void *y = (char *)j->y + b * (int64_t)es;
    if (j->dt == OCTET_FLOAT)
        oct_ref_unary_f32(OCT_UN_CLIP, j->fmin, j->fmax, x, y, (size_t)(e - b));
    else
        oct_ref_unary_int(OCT_UN_CLIP, j->dt, j->imin, j->imax, x, y, (size_t)(e - b));
}

static int64_t read_int(octet_dtype dt, const void *p) {
    switch (dt) {
    case OCTET_INT8: return *(const int8_t *)p;
    case OCTET_UINT8: return *(const uint8_t *)p;
    case OCTET_INT32: return *(const int32_t *)p;
    default: return *(const int64_t *)p;
    }
}

static void int_range(octet_dtype dt, int64_t *lo, int64_t *hi) {
    switch (dt) {
    case OCTET_INT8: *lo = INT8_MIN; *hi = INT8_MAX; break;
    case OCTET_UINT8: *lo = 0; *hi = UINT8_MAX; break;
    case OCTET_INT32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    default: *lo = INT64_MIN; *hi = INT64_MAX; break;
    }
}

static int clip_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const clip_params *p = n->params;
    const oct_tensor *x = oct_in(ctx, n, 0);
    clip_job j = {x->dtype, p->attr_min, p->attr_max, 0, 0, x->data, oct_out(ctx, n, 0)->data};
    int_range(x->dtype, &j.imin, &j.imax);
    if (p->bounds_are_inputs) {
        j.fmin = -INFINITY;
        j.fmax = INFINITY;
        if (oct_node_has_input(n, 1)) {
            const void *v = oct_in(ctx, n, 1)->data;
            if (x->dtype == OCTET_FLOAT) j.fmin = *(const float *)v;
            else j.imin = read_int(x->dtype, v);
        }
        if (oct_node_has_input(n, 2)) {
            const void *v = oct_in(ctx, n, 2)->data;
            if (x->dtype == OCTET_FLOAT) j.fmax = *(const float *)v;
            else j.imax = read_int(x->dtype, v);
        }
    }
    oct_math_parallel(ctx, octet_tensor_numel(x), OCT_MATH_GRAIN, clip_range, &j);
    return 0;
}

const oct_op oct_op_clip = {"", "Clip", OCT_OP_TEAM, clip_infer, clip_run, NULL};
