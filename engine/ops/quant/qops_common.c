/* Helpers of the table-driven and element-wise int8 ops; see qops_common.h. */
#include <math.h>
#include <stdio.h>

#include "qops_common.h"

int qops_check_inputs(const oct_node *n, int min, int max, unsigned required, octet_error *err) {
    if (n->n_in < min || n->n_in > max) {
        if (min == max) return oct_fail(err, OCTET_ERR_FORMAT, "%s expects %d inputs, has %d", n->op_type, min, n->n_in);
        return oct_fail(err, OCTET_ERR_FORMAT, "%s expects %d to %d inputs, has %d", n->op_type, min, max, n->n_in);
    }
    for (int i = 0; i < n->n_in && i < 32; i++)
        if ((required >> i & 1u) && n->in[i] < 0)
            return oct_fail(err, OCTET_ERR_FORMAT, "%s: required input %d is missing", n->op_type, i);
    if (n->n_out != 1) return oct_fail(err, OCTET_ERR_FORMAT, "%s has %d outputs, expects 1", n->op_type, n->n_out);
    return 0;
}

int qops_check_qparams(oct_graph *g, const oct_node *n, int si, int zi, octet_dtype t, const char *what,
                       octet_error *err) {
    char name[64];
    snprintf(name, sizeof name, "%s scale", what);
    if (!oct_node_has_input(n, si)) return oct_fail(err, OCTET_ERR_FORMAT, "%s is missing", name);
    if (quant_check_param(g, n, si, name, OCTET_FLOAT, -1, NULL, err) < 0) return -1;
    if (zi < 0 || !oct_node_has_input(n, zi)) return 0;
    snprintf(name, sizeof name, "%s zero point", what);
    return quant_check_param(g, n, zi, name, t, -1, NULL, err) < 0 ? -1 : 0;
}

int qops_check_scale_value(float scale, const char *what, octet_error *err) {
    if (!(scale > 0.f) || !isfinite(scale))
        return oct_fail(err, OCTET_ERR_FORMAT, "%s scale is %g; it must be finite and positive", what, (double)scale);
    return 0;
}

int qops_const_qparams(oct_graph *g, const oct_node *n, int si, int zi, const char *what, qops_qparams *out,
                       octet_error *err) {
    const oct_value *s = oct_const_input(g, n, si, err);
    if (!s) return -1;
    out->scale = *(const float *)s->data;
    out->zp = 0;
    if (zi >= 0 && oct_node_has_input(n, zi)) {
        const oct_value *z = oct_const_input(g, n, zi, err);
        if (!z) return -1;
        oct_tensor t = oct_value_tensor(z);
        out->zp = quant_zp_at(&t, 0);
    }
    return qops_check_scale_value(out->scale, what, err);
}

qops_qparams qops_run_qparams(const oct_run_ctx *ctx, const oct_node *n, int si, int zi) {
    qops_qparams q = {*(const float *)oct_in(ctx, n, si)->data, 0};
    if (zi >= 0) q.zp = quant_zp_at(quant_opt_in(ctx, n, zi), 0);
    return q;
}

void qops_build_table(int x_s8, qops_qparams x, int y_s8, qops_qparams y, int32_t qmin, int32_t qmax, qops_fn f,
                      const void *ctx, uint8_t table[256]) {
    for (int b = 0; b < 256; b++) {
        const float xr = (float)(oct_q8_value((uint8_t)b, x_s8) - x.zp) * x.scale;
        const double v = f((double)xr, ctx) / (double)y.scale;
        const int32_t q = oct_q8_round(v, y.zp, qmin, qmax);
        table[b] = y_s8 ? (uint8_t)(int8_t)q : (uint8_t)q;
    }
}

void qops_split(int64_t n, int64_t pieces, int64_t i, int64_t *begin, int64_t *end) {
    const int64_t per = ((n + pieces - 1) / pieces + 63) / 64 * 64;
    *begin = i * per < n ? i * per : n;
    *end = *begin + per < n ? *begin + per : n;
}
