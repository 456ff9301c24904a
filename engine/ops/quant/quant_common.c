/* Helpers shared by the quantized ops; see quant_common.h. */
#include <math.h>

#include "quant_common.h"

const oct_quant_kernel_set *quant_kernels(void) {
    /* The set of the ISA level kernels/dispatch.c selected (OCTET_ISA lowers it). */
    return oct_kernels()->quant;
}

int quant_require_dtype(oct_graph *g, const oct_node *n, int i, const char *what, octet_dtype a,
                        octet_dtype b, octet_error *err) {
    const oct_value *v = oct_in_val(g, n, i);
    if (v->dtype == a || v->dtype == b) return 0;
    if (a == b)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s '%s' is %s, expected %s", what, v->name,
                        octet_dtype_name(v->dtype), octet_dtype_name(a));
    return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s '%s' is %s, expected %s or %s", what, v->name,
                    octet_dtype_name(v->dtype), octet_dtype_name(a), octet_dtype_name(b));
}

int64_t quant_check_param(oct_graph *g, const oct_node *n, int i, const char *what, octet_dtype dtype,
                          int64_t channels, const char *channel_what, octet_error *err) {
    const oct_value *v = oct_in_val(g, n, i);
    if (v->dtype != dtype)
        return oct_fail(err, OCTET_ERR_SHAPE, "%s '%s' is %s, expected %s", what, v->name,
                        octet_dtype_name(v->dtype), octet_dtype_name(dtype));
    const int64_t count = oct_value_numel(v);
    if (count == 1) return 1;
    if (channels >= 0 && v->rank == 1 && count == channels) return channels;
    if (channels >= 0)
        return oct_fail(err, OCTET_ERR_SHAPE,
                        "%s '%s' has %lld values (rank %d); expected one value or a 1-D tensor of %lld (%s)",
                        what, v->name, (long long)count, v->rank, (long long)channels, channel_what);
    return oct_fail(err, OCTET_ERR_SHAPE, "%s '%s' has %lld values; expected a single value", what,
                    v->name, (long long)count);
}

int quant_multipliers(float s_x, const float *s_w, int64_t w_count, float s_y, int64_t count,
                      float *mult, octet_error *err) {
    for (int64_t r = 0; r < count; r++) {
        const float sw = s_w[w_count > 1 ? r : 0];
        const float m = s_x * sw / s_y;
        if (!isfinite(m))
            return oct_fail(err, OCTET_ERR_FORMAT,
                            "requantization multiplier of channel %lld is not finite "
                            "(input scale %g, weight scale %g, output scale %g)",
                            (long long)r, (double)s_x, (double)sw, (double)s_y);
        mult[r] = m;
    }
    return 0;
}

size_t quant_align64(size_t n) {
    if (n > SIZE_MAX - 63) return 0;
    return (n + 63) & ~(size_t)63;
}

int quant_check_epilogue(const oct_node *n, octet_error *err) {
    if (n->epi.residual >= 0)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s cannot apply a fused residual", n->op_type);
    if (n->epi.act != OCT_ACT_NONE && n->epi.act != OCT_ACT_RELU && n->epi.act != OCT_ACT_CLIP)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                        "%s can fuse only Relu or Clip into its output clamp (activation kind %d)", n->op_type,
                        (int)n->epi.act);
    if (n->epi.act == OCT_ACT_CLIP && !(n->epi.alpha <= n->epi.beta))
        return oct_fail(err, OCTET_ERR_FORMAT, "fused Clip has min %g above max %g", (double)n->epi.alpha,
                        (double)n->epi.beta);
    return 0;
}

/* zp + rint(v / y_scale), clamped to [qmin, qmax] before any integer conversion. */
static int32_t quant_bound(float v, float y_scale, int32_t y_zp, int32_t qmin, int32_t qmax) {
    float q = v / y_scale;
    if (isnan(q)) return y_zp;
    const float lo = (float)(qmin - y_zp), hi = (float)(qmax - y_zp);
    q = q < lo ? lo : (q > hi ? hi : q);
    return (int32_t)rintf(q) + y_zp;
}

void quant_act_clamp(const oct_node *n, float y_scale, int32_t y_zp, int32_t *qmin, int32_t *qmax) {
    float lo, hi;
    if (n->epi.act == OCT_ACT_RELU) {
        lo = 0.f;
        hi = INFINITY;
    } else if (n->epi.act == OCT_ACT_CLIP) {
        lo = n->epi.alpha;
        hi = n->epi.beta;
    } else {
        return;
    }
    const int32_t a = quant_bound(lo, y_scale, y_zp, *qmin, *qmax), b = quant_bound(hi, y_scale, y_zp, *qmin, *qmax);
    *qmin = a;
    *qmax = b;
}
