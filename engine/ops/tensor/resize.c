/* Resize (opsets 10, 11, 13) and Upsample (7, 9). Shapes are static, so infer turns the
   attributes, scales/sizes and roi into per-axis tap tables (input index and weight for every
   output coordinate); run is then a table-driven kernel from kernels/ref/resize.c.
   Coordinates follow the ONNX reference (onnx/backend/test/case/node/resize.py): computed in
   double, a coordinate that lands exactly on an input sample reads that sample alone, and taps
   outside the input read the edge (or are dropped with exclude_outside). */
#include <math.h>
#include <stdlib.h>

#include "ref/tensor_kernels.h"
#include "tensor_ops.h"

typedef enum { MODE_NEAREST, MODE_LINEAR, MODE_CUBIC } interp_mode;
typedef enum {
    CT_HALF_PIXEL, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS, CT_ASYMMETRIC, CT_TF_HALF_PIXEL_FOR_NN,
    CT_TF_CROP_AND_RESIZE
} coord_mode;
/* LEGACY is Resize-10 and Upsample: floor when enlarging, ceil when shrinking (as ONNX Runtime). */
typedef enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_LEGACY } nearest_mode;

typedef struct {
    interp_mode mode;
    coord_mode coord;
    nearest_mode nearest;
    double cubic_a;
    bool exclude_outside;
    float extrapolation;
    bool sizes_given;
    double scale[OCTET_MAX_RANK];
    double roi[2 * OCTET_MAX_RANK];
} resize_config;

/* One allocation: this header, then the tables the axes point into. */
typedef struct {
    int rank;
    bool nearest;
    float extrapolation;
    oct_resize_axis axes[OCTET_MAX_RANK];
} resize_params;

/* Table entries (over all axes) beyond which a resize is refused rather than planned. */
#define MAX_TABLE_ENTRIES ((int64_t)1 << 28)

static int lookup(const char *s, const char *const *names, int count, const char *what, int *out,
                  octet_error *err) {
    for (int i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s '%s' is not supported", what, s);
}

/* Reads a constant float input; returns the count, or -1 with err set. */
static int const_floats(oct_graph *g, const oct_node *n, int i, double *out, int max,
                        octet_error *err) {
    const oct_value *v = oct_const_input(g, n, i, err);
    if (!v) return -1;
    if (v->dtype != OCTET_FLOAT)
        return oct_fail(err, OCTET_ERR_FORMAT, "input '%s' must be float32, is %s", v->name,
                        octet_dtype_name(v->dtype));
    int64_t cnt = oct_value_numel(v);
    if (cnt < 0 || cnt > max)
        return oct_fail(err, OCTET_ERR_FORMAT, "input '%s' has %lld values, expected at most %d",
                        v->name, (long long)cnt, max);
    for (int64_t k = 0; k < cnt; k++) out[k] = ((const float *)v->data)[k];
    return (int)cnt;
}

static bool present(oct_graph *g, const oct_node *n, int i) {
    return oct_node_has_input(n, i) && oct_value_numel(oct_in_val(g, n, i)) != 0;
}

/* Fills cfg from the node and computes the output dims. */
static int read_config(oct_graph *g, const oct_node *n, bool upsample, resize_config *c,
                       int64_t *out, octet_error *err) {
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
                                         "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    int opset = tensor_opset(g);
    bool legacy = upsample || opset < 11;
    const oct_value *x = oct_in_val(g, n, 0);
    int rank = x->rank, v = 0;
    if (rank < 1) return oct_fail(err, OCTET_ERR_SHAPE, "cannot resize a scalar");
    memset(c, 0, sizeof *c);
    if (lookup(oct_attr_string(n, "mode", "nearest"), modes, legacy ? 2 : 3, "mode", &v, err))
        return -1;
    c->mode = (interp_mode)v;
    c->coord = CT_ASYMMETRIC;
    c->nearest = NM_LEGACY;
    c->cubic_a = -0.75;
    if (!legacy) {
        if (lookup(oct_attr_string(n, "coordinate_transformation_mode", "half_pixel"), coords, 6,
                   "coordinate_transformation_mode", &v, err))
            return -1;
        c->coord = (coord_mode)v;
        if (lookup(oct_attr_string(n, "nearest_mode", "round_prefer_floor"), nearests, 4,
                   "nearest_mode", &v, err))
            return -1;
        c->nearest = (nearest_mode)v;
        c->cubic_a = oct_attr_float(n, "cubic_coeff_a", -0.75f);
        c->exclude_outside = oct_attr_int(n, "exclude_outside", 0) != 0;
        c->extrapolation = oct_attr_float(n, "extrapolation_value", 0.f);
        if (oct_attr_int(n, "antialias", 0) || oct_node_attr(n, "axes") ||
            strcmp(oct_attr_string(n, "keep_aspect_ratio_policy", "stretch"), "stretch") != 0)
            return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                            "antialias, axes and keep_aspect_ratio_policy (opset 18) are not supported");
    }
    if (c->mode != MODE_NEAREST && x->dtype != OCTET_FLOAT)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "mode '%s' needs float32 data, not %s",
                        modes[c->mode], octet_dtype_name(x->dtype));

    /* scales: Upsample-7 attribute, Upsample-9/Resize-10 input 1, Resize-11+ input 2. */
    int scales_at = legacy ? 1 : 2, count = -1;
    if (upsample && opset < 9) {
        const oct_attr *a = oct_node_attr(n, "scales");
        if (!a || a->type != OCT_ATTR_FLOATS)
            return oct_fail(err, OCTET_ERR_FORMAT, "attribute 'scales' is missing");
        count = a->n;
        for (int i = 0; i < count && i < rank; i++) c->scale[i] = a->floats[i];
    } else if (present(g, n, scales_at)) {
        count = const_floats(g, n, scales_at, c->scale, OCTET_MAX_RANK, err);
        if (count < 0) return -1;
    }
    if (!legacy && present(g, n, 3)) {
        if (count >= 0) return oct_fail(err, OCTET_ERR_FORMAT, "both scales and sizes are given");
        int64_t sizes[OCTET_MAX_RANK];
        int ns = oct_const_ints(g, n, 3, sizes, OCTET_MAX_RANK, err);
        if (ns < 0) return -1;
        if (ns != rank)
            return oct_fail(err, OCTET_ERR_FORMAT, "sizes has %d values for an input of rank %d", ns,
                            rank);
        c->sizes_given = true;
        for (int d = 0; d < rank; d++) {
            if (sizes[d] < 0)
                return oct_fail(err, OCTET_ERR_FORMAT, "size %lld of axis %d is negative",
                                (long long)sizes[d], d);
            out[d] = sizes[d];
            c->scale[d] = x->dims[d] ? (double)sizes[d] / (double)x->dims[d] : 1.0;
        }
    } else if (count < 0) {
        return oct_fail(err, OCTET_ERR_FORMAT, "neither scales nor sizes is given");
    } else if (count != rank) {
        return oct_fail(err, OCTET_ERR_FORMAT, "scales has %d values for an input of rank %d", count,
                        rank);
    }
    if (c->coord == CT_TF_CROP_AND_RESIZE) {
        if (!present(g, n, 1))
            return oct_fail(err, OCTET_ERR_FORMAT, "tf_crop_and_resize needs the roi input");
        int nr = const_floats(g, n, 1, c->roi, 2 * OCTET_MAX_RANK, err);
        if (nr < 0) return -1;
        if (nr != 2 * rank)
            return oct_fail(err, OCTET_ERR_FORMAT, "roi has %d values, expected %d", nr, 2 * rank);
    }
    if (!c->sizes_given) {
        for (int d = 0; d < rank; d++) {
            if (!(c->scale[d] > 0) || !isfinite(c->scale[d]))
                return oct_fail(err, OCTET_ERR_FORMAT, "scale %g of axis %d must be positive",
                                c->scale[d], d);
            if (upsample && c->scale[d] < 1)
                return oct_fail(err, OCTET_ERR_FORMAT, "Upsample scale %g of axis %d is below 1",
                                c->scale[d], d);
            double span = c->coord == CT_TF_CROP_AND_RESIZE ? c->roi[rank + d] - c->roi[d] : 1.0;
            double size = floor((double)x->dims[d] * span * c->scale[d]);
            if (!(size >= 0) || size > 9e15)
                return oct_fail(err, OCTET_ERR_SHAPE, "output size of axis %d is invalid", d);
            out[d] = (int64_t)size;
        }
    }
    return tensor_check_shape(rank, out, x->dtype, "output", err);
}

/* The input coordinate that output coordinate o of axis d samples; *outside is set when it lies
   beyond the crop of tf_crop_and_resize. */
static double input_coord(const resize_config *c, int rank, int d, int64_t o, int64_t in_len,
                          int64_t out_len, bool *outside) {
    double x = (double)o, s = c->scale[d];
    /* The reference uses the unrounded output length scale*in for these modes. */
    double out_w = c->sizes_given ? (double)out_len : s * (double)in_len;
    *outside = false;
    switch (c->coord) {
    case CT_HALF_PIXEL: return (x + 0.5) / s - 0.5;
    case CT_PYTORCH_HALF_PIXEL: return out_len > 1 ? (x + 0.5) / s - 0.5 : 0.0;
    case CT_ALIGN_CORNERS: return out_w == 1.0 ? 0.0 : x * (double)(in_len - 1) / (out_w - 1.0);
    case CT_ASYMMETRIC: return x / s;
    case CT_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / s;
    case CT_TF_CROP_AND_RESIZE: {
        double start = c->roi[d], end = c->roi[rank + d], span = (double)(in_len - 1);
        double r = out_w == 1.0 ? (end - start) * span / 2.0 : x * (end - start) * span / (out_w - 1.0);
        r += start * span;
        *outside = r < 0.0 || r > span;
        return r;
    }
    }
    return 0.0;
}

static int64_t clamp_index(double i, int64_t in_len) {
    if (i < 0.0) return 0;
    if (i > (double)(in_len - 1)) return in_len - 1;
    return (int64_t)i;
}

static int64_t nearest_index(const resize_config *c, double x, double scale, int64_t in_len) {
    double base = floor(x), t = x - base;
    double pick = base;
    if (t != 0.0) {
        switch (c->nearest) {
        case NM_ROUND_PREFER_FLOOR: pick = t <= 0.5 ? base : base + 1; break;
        case NM_ROUND_PREFER_CEIL: pick = t < 0.5 ? base : base + 1; break;
        case NM_FLOOR: pick = base; break;
        case NM_CEIL: pick = base + 1; break;
        case NM_LEGACY: pick = scale < 1.0 ? base + 1 : base; break;
        }
    }
    return clamp_index(pick, in_len);
}

static void cubic_coeffs(double t, double a, double *w) {
    double u = 1.0 - t;
    w[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
    w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    w[2] = ((a + 2) * u - (a + 3)) * u * u + 1;
    w[3] = ((a * (u + 1) - 5 * a) * (u + 1) + 8 * a) * (u + 1) - 4 * a;
}

/* Builds the taps of one output coordinate (linear or cubic). */
static void interp_taps(const resize_config *c, double x, int64_t in_len, int taps, int64_t *idx,
                        float *wout) {
    double base = floor(x), t = x - base, w[4];
    /* On an exact sample the reference takes ratio 1 from the left neighbour. */
    if (t == 0.0) {
        t = 1.0;
        base -= 1.0;
    }
    double first = taps == 2 ? base : base - 1.0;
    if (taps == 2) {
        w[0] = 1.0 - t;
        w[1] = t;
    } else {
        cubic_coeffs(t, c->cubic_a, w);
    }
    double sum = 0.0;
    for (int k = 0; k < taps; k++) {
        double at = first + k;
        if (c->exclude_outside && (at < 0.0 || at > (double)(in_len - 1))) w[k] = 0.0;
        sum += w[k];
    }
    for (int k = 0; k < taps; k++) {
        idx[k] = clamp_index(first + k, in_len);
        wout[k] = (float)(c->exclude_outside && sum != 0.0 ? w[k] / sum : w[k]);
    }
}

/* An axis whose every coordinate reads one sample with weight 1 needs a single tap. */
static void compact_axis(oct_resize_axis *ax, int64_t *index, float *weight) {
    if (ax->taps == 1) return;
    for (int64_t o = 0; o < ax->out_len; o++) {
        int ones = 0, zeros = 0;
        for (int t = 0; t < ax->taps; t++) {
            float w = weight[o * ax->taps + t];
            ones += w == 1.f;
            zeros += w == 0.f;
        }
        if (ones != 1 || zeros != ax->taps - 1) return;
    }
    for (int64_t o = 0; o < ax->out_len; o++) {
        int64_t pick = 0;
        for (int t = 0; t < ax->taps; t++)
            if (weight[o * ax->taps + t] == 1.f) pick = index[o * ax->taps + t];
        index[o] = pick;
    }
    ax->taps = 1;
    ax->weight = NULL;
}

static int infer_common(oct_graph *g, oct_node *n, bool upsample, octet_error *err) {
    bool legacy = upsample || tensor_opset(g) < 11;
    if (oct_check_inputs(n, 1, legacy ? 2 : 4, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    resize_config c;
    int64_t out[OCTET_MAX_RANK];
    if (read_config(g, n, upsample, &c, out, err)) return -1;
    int rank = x->rank, taps = c.mode == MODE_NEAREST ? 1 : c.mode == MODE_LINEAR ? 2 : 4;
    int64_t entries = 0;
    for (int d = 0; d < rank; d++) entries += out[d];
    if (entries * taps > MAX_TABLE_ENTRIES)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "output dims are too large to resize");
    size_t bytes = sizeof(resize_params) + (size_t)(entries * taps) * (sizeof(int64_t) + sizeof(float))
                   + (size_t)entries;
    resize_params *p = calloc(1, bytes);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory for resize tables");
    p->rank = rank;
    p->nearest = c.mode == MODE_NEAREST;
    p->extrapolation = c.extrapolation;
    int64_t *index = (int64_t *)(p + 1);
    float *weight = (float *)(index + entries * taps);
    uint8_t *outside = (uint8_t *)(weight + entries * taps);
    for (int d = 0; d < rank; d++) {
        oct_resize_axis *ax = &p->axes[d];
        int64_t in_len = x->dims[d];
        ax->in_len = in_len;
        ax->out_len = out[d];
        ax->taps = taps;
        ax->index = index;
        ax->weight = taps > 1 ? weight : NULL;
        ax->outside = c.coord == CT_TF_CROP_AND_RESIZE ? outside : NULL;
        if (in_len == 0 && out[d] > 0) {
            free(p);
            return oct_fail(err, OCTET_ERR_SHAPE, "cannot resize the empty axis %d to %lld", d,
                            (long long)out[d]);
        }
        for (int64_t o = 0; o < out[d]; o++) {
            bool off;
            double xi = input_coord(&c, rank, d, o, in_len, out[d], &off);
            outside[o] = off;
            if (taps == 1) index[o] = nearest_index(&c, xi, c.scale[d], in_len);
            else interp_taps(&c, xi, in_len, taps, index + o * taps, weight + o * taps);
        }
        compact_axis(ax, index, weight);
        index += out[d] * taps;
        weight += out[d] * taps;
        outside += out[d];
    }
    tensor_set_params(n, p);
    oct_set_output(g, n, 0, x->dtype, rank, out);
    return 0;
}

static int infer_resize(oct_graph *g, oct_node *n, octet_error *err) {
    return infer_common(g, n, false, err);
}

static int infer_upsample(oct_graph *g, oct_node *n, octet_error *err) {
    return infer_common(g, n, true, err);
}

static int run_resize(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const resize_params *p = n->params;
    const oct_tensor *x = oct_in(ctx, n, 0);
    oct_tensor *y = oct_out(ctx, n, 0);
    size_t es = octet_dtype_size(x->dtype);
    int64_t numel = octet_tensor_numel(y);
    if (numel <= 0) return 0;
    int threads = tensor_threads(ctx, (size_t)numel * es * (p->nearest ? 1 : 8));
    if (p->nearest) {
        /* The extrapolation value in the data's type (only tf_crop_and_resize uses it). */
        uint64_t fill = 0;
        tensor_from_float(p->extrapolation, x->dtype, &fill);
        oct_ref_resize_nearest(x->data, y->data, es, p->rank, p->axes, &fill, threads);
    } else {
        oct_ref_resize_f32(x->data, y->data, p->rank, p->axes, p->extrapolation, threads);
    }
    return 0;
}

const oct_op oct_op_resize = {"", "Resize", 0, infer_resize, run_resize, NULL};
const oct_op oct_op_upsample = {"", "Upsample", 0, infer_upsample, run_resize, NULL};
