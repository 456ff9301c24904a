/* Helpers shared by the quantized ops; see quant_common.h. */
#include <math.h>

#include "quant_common.h"

const oct_quant_kernel_set *quant_kernels(void) {
    /* Only the reference set exists so far; SIMD sets will be chosen through kernels/dispatch.c. */
    return &oct_ref_quant_kernels;
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
