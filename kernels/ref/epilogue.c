/* The fused write-back of GEMM-shaped producers (Conv, ConvTranspose, Gemm, MatMul), applied to
   an output block right after the GEMM that wrote it, while the block is still in cache. */
#include "nn_kernels.h"

int oct_epilogue_is_identity(const oct_epilogue_args *e) {
    return e->alpha == 1.f && !e->row_bias && !e->c && !e->res && e->act.kind == 0;
}

void oct_ref_epilogue(float *y, int64_t ldy, int64_t m, int64_t n, const oct_epilogue_args *e) {
    if (oct_epilogue_is_identity(e)) return;
    for (int64_t i = 0; i < m; i++) {
        float *yr = y + i * ldy;
        if (e->alpha != 1.f)
            for (int64_t j = 0; j < n; j++) yr[j] *= e->alpha;
        if (e->row_bias) {
            const float b = e->row_bias[i];
            for (int64_t j = 0; j < n; j++) yr[j] += b;
        }
        if (e->c) {
            const float *cr = e->c + i * e->c_rs;
            if (e->c_cs == 1)
                for (int64_t j = 0; j < n; j++) yr[j] += e->beta * cr[j];
            else
                for (int64_t j = 0; j < n; j++) yr[j] += e->beta * cr[j * e->c_cs];
        }
        if (e->res) {
            const float *rr = e->res + i * e->ldr;
            for (int64_t j = 0; j < n; j++) yr[j] += rr[j];
        }
        if (e->act.kind)
            for (int64_t j = 0; j < n; j++) yr[j] = oct_act_apply(&e->act, yr[j]);
    }
}

void oct_ref_transpose_f32(const float *a, int64_t m, int64_t n, int64_t lda, float *t) {
    enum { B = 32 }; /* blocked so that both sides stay in cache */
    for (int64_t i0 = 0; i0 < m; i0 += B)
        for (int64_t j0 = 0; j0 < n; j0 += B) {
            int64_t i1 = i0 + B < m ? i0 + B : m, j1 = j0 + B < n ? j0 + B : n;
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = j0; j < j1; j++) t[j * m + i] = a[i * lda + j];
        }
}
