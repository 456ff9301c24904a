/* DynamicQuantizeLinear (opset 11): uint8 quantization with scale and zero point computed from
   the data's range, which is widened to include 0:
       scale = (max - min) / 255 (float32; 1 for an all-zero input, as ONNX Runtime does)
       zp    = rint(clamp(0 - min / scale, 0, 255)),  y = saturate(rint(x / scale) + zp). */
#include "quant_common.h"

enum { DQ_CHUNK = 1 << 16 };

static int dynq_infer(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 1, err)) return -1;
    if (n->n_out != 3)
        return oct_fail(err, OCTET_ERR_FORMAT, "DynamicQuantizeLinear has %d outputs, expects 3", n->n_out);
    for (int i = 0; i < 3; i++)
        if (n->out[i] < 0) return oct_fail(err, OCTET_ERR_FORMAT, "output %d is missing", i);
    if (quant_require_dtype(g, n, 0, "input", OCTET_FLOAT, OCTET_FLOAT, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (oct_value_numel(x) < 0) return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' has no valid shape", x->name);
    oct_set_output(g, n, 0, OCTET_UINT8, x->rank, x->dims);
    oct_set_output(g, n, 1, OCTET_FLOAT, 0, NULL);
    oct_set_output(g, n, 2, OCTET_UINT8, 0, NULL);
    return 0;
}

static int dynq_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const oct_tensor *xt = oct_in(ctx, n, 0);
    const float *x = xt->data;
    const int64_t numel = octet_tensor_numel(xt);
    const int64_t chunks = (numel + DQ_CHUNK - 1) / DQ_CHUNK;
    const int t = ctx->threads > 1 ? ctx->threads : 1;
    /* min and max are exact whatever the order, so the parallel scan is deterministic. */
    float lo = 0.f, hi = 0.f;
#pragma omp parallel num_threads(t) if (t > 1 && chunks > 1)
    {
        float tlo = 0.f, thi = 0.f;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            const int64_t len = numel - c * DQ_CHUNK < DQ_CHUNK ? numel - c * DQ_CHUNK : DQ_CHUNK;
            oct_ref_minmax_f32(x + c * DQ_CHUNK, len, &tlo, &thi);
        }
#pragma omp critical
        {
            if (tlo < lo) lo = tlo;
            if (thi > hi) hi = thi;
        }
    }
    float scale;
    uint8_t zp;
    oct_ref_dynamic_qparams_u8(lo, hi, &scale, &zp);
    uint8_t *y = oct_out(ctx, n, 0)->data;
#pragma omp parallel for num_threads(t) schedule(static) if (t > 1 && chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t len = numel - c * DQ_CHUNK < DQ_CHUNK ? numel - c * DQ_CHUNK : DQ_CHUNK;
        oct_ref_quantize_f32_u8(x + c * DQ_CHUNK, len, scale, zp, y + c * DQ_CHUNK);
    }
    *(float *)oct_out(ctx, n, 1)->data = scale;
    *(uint8_t *)oct_out(ctx, n, 2)->data = zp;
    return 0;
}

const oct_op oct_op_dynamic_quantize_linear = {"", "DynamicQuantizeLinear", 0, dynq_infer, dynq_run, NULL};
