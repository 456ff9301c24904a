/* The portable micro-tile and packing for oct_sgemm_run: what the ref ISA level runs for packed
   weights and fused epilogues, and the twin the SIMD tiles are tested against (through the same
   driver). 4 x 8 accumulators in a local array that gcc -O3 keeps in vector registers. */
#include "../sgemm_blocked.h"

enum { MR = 4, NR = 8 };

static void pack_a(int rows, int kc, const float *a, int lda, float *ap) {
    for (int p = 0; p < kc; p++)
        for (int i = 0; i < MR; i++) ap[(size_t)p * MR + i] = i < rows ? a[(size_t)i * lda + p] : 0.f;
}

static void pack_b(int kc, int cols, const float *b, int ldb, float *bp) {
    for (int p = 0; p < kc; p++)
        for (int j = 0; j < NR; j++) bp[(size_t)p * NR + j] = j < cols ? b[(size_t)p * ldb + j] : 0.f;
}

/* One output of the epilogue, in oct_ref_epilogue's order of operations. */
static float epilogue_at(const oct_epilogue_args *e, int i, int j, float v) {
    if (e->alpha != 1.f) v *= e->alpha;
    if (e->row_bias) v += e->row_bias[i];
    if (e->c) v += e->beta * e->c[(int64_t)i * e->c_rs + (int64_t)j * e->c_cs];
    if (e->res) v += e->res[(int64_t)i * e->ldr + j];
    return e->act.kind ? oct_act_apply(&e->act, v) : v;
}

static void tile(int rows, int cols, int kc, const float *restrict ap, const float *restrict b, size_t bs,
                 float *c, size_t ldc, int load, const oct_epilogue_args *e) {
    float acc[MR][NR] = {{0.f}};
    for (int p = 0; p < kc; p++, ap += MR, b += bs)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += ap[i] * b[j];
    for (int i = 0; i < rows; i++) {
        float *cr = c + (size_t)i * ldc;
        for (int j = 0; j < cols; j++) {
            float v = load ? cr[j] + acc[i][j] : acc[i][j];
            cr[j] = e ? epilogue_at(e, i, j, v) : v;
        }
    }
}

const oct_sgemm_arch oct_ref_sgemm_arch = {
    .name = "ref", .mr = MR, .nr = NR, .kc = 256, .mc = 64, .nc = 128,
    .pack_a = pack_a, .pack_b = pack_b, .tile = tile, .reads_b_in_place = 0,
};
