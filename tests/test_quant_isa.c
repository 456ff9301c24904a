/* The SIMD int8 kernel sets (kernels/quant_isa.h) against ref, bit for bit:
   - qgemm on odd sizes (rows 1..70, k 1..300, cols 1..100), sub-ranges of rows, padded strides
     with guard cells, random zero points per row and per column, extreme values 0/255 and
     -128/127, uint8 and transposed weights, and a K long enough to wrap int32;
   - requant over the whole int32 range, exact ties, per-row and shared scales, narrowed clamps,
     int8 and uint8 outputs, strided (transposed) stores, with and without an activation table;
   - every set the CPU supports, called directly (AVX-VNNI too on a CPU that also has AVX-512) and
     through OCTET_ISA + oct_kernels_reset();
   - whole QLinearConv graphs through the public API (the ONNX node test and larger random ones
     built here: 3x3 with padding, grouped, 1x1, uint8 weights with zero points) give the same
     bytes at every OCTET_ISA level and thread count. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "engine/octet.h"
#include "kernels/kernels.h"
#include "kernels/quant_isa.h"
#include "loader/loader.h"
#include "onnx.pb-c.h"
#include "test_session.h"
#include "test_util.h"

/* ---------------------------------------------------------------- random data */

static uint32_t rng = 2024u;
static uint32_t rnext(void) {
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}
static int rin(int lo, int hi) { return lo + (int)(rnext() % (uint32_t)(hi - lo + 1)); }

/* ---------------------------------------------------------------- the sets under test */

typedef struct {
    const char *what;
    const oct_quant_kernel_set *ks;
} set_case;

/* The sets this CPU can run, called directly. Returns the count. */
static int direct_sets(set_case out[8]) {
    int n = 0;
#if defined(__x86_64__)
    if (oct_isa_supported(OCT_ISA_AVX2)) out[n++] = (set_case){"avx2", &oct_avx2_quant_kernels};
    if (oct_cpu_has_avxvnni()) out[n++] = (set_case){"avxvnni", &oct_avxvnni_quant_kernels};
    if (oct_isa_supported(OCT_ISA_AVX512) && __builtin_cpu_supports("avx512vnni"))
        out[n++] = (set_case){"vnni", &oct_vnni_quant_kernels};
#endif
#if defined(__aarch64__)
    out[n++] = (set_case){"neon", &oct_neon_quant_kernels};
    if (oct_isa_supported(OCT_ISA_DOTPROD)) out[n++] = (set_case){"dotprod", &oct_dotprod_quant_kernels};
#endif
    return n;
}

static const oct_kernel_table *select_isa(oct_isa isa) {
    test_use_isa(isa);
    return oct_kernels();
}

/* ---------------------------------------------------------------- qgemm */

typedef struct {
    int rows, k, cols;
    int r0, nr;           /* the rows asked for */
    int w_u8, w_trans;    /* uint8 weights; weights stored [k][rows] */
    int extreme;          /* only 0/255 activations and -128/127 weights */
    int zp_mode;          /* 0: no weight zero points, 1: per row, 2: per row, all zero */
    int zx_cols;          /* x_zp_cols given */
    int pad;              /* extra row stride of x and acc */
} gemm_case;

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void *aligned(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void compare_gemm(const char *what, const oct_quant_kernel_set *ks, const gemm_case *c) {
    const int64_t ldx = c->cols + c->pad, ldacc = c->cols + 2 * c->pad + 1;
    uint8_t *w = xmalloc((size_t)c->rows * (size_t)c->k);
    uint8_t *x = xmalloc((size_t)c->k * (size_t)ldx);
    int32_t *wzp = xmalloc(sizeof(int32_t) * (size_t)c->rows), *zxc = xmalloc(sizeof(int32_t) * (size_t)c->cols);
    for (int i = 0; i < c->rows * c->k; i++) {
        const int v = c->extreme ? (rnext() & 1 ? 127 : -128) : rin(-128, 127);
        w[i] = (uint8_t)(c->w_u8 ? v + 128 : v);
    }
    for (int64_t i = 0; i < c->k * ldx; i++) x[i] = (uint8_t)(c->extreme ? (rnext() & 1 ? 255 : 0) : rin(0, 255));
    for (int r = 0; r < c->rows; r++) wzp[r] = c->zp_mode == 2 ? 0 : rin(-128, 127);
    for (int j = 0; j < c->cols; j++) zxc[j] = rin(0, 255);
    const int32_t x_zp = rin(0, 255);
    const int64_t w_rs = c->w_trans ? 1 : c->k, w_ks = c->w_trans ? c->rows : 1;

    const size_t rb = oct_ref_qweights_bytes(c->rows, c->k), sb = ks->qweights_bytes(c->rows, c->k);
    ck_assert(rb > 0 && sb > 0);
    void *rbuf = aligned(rb), *sbuf = aligned(sb);
    oct_qweights rw, sw;
    oct_ref_qweights_pack(c->rows, c->k, w, c->w_u8, w_rs, w_ks, rbuf, &rw);
    ks->qweights_pack(c->rows, c->k, w, c->w_u8, w_rs, w_ks, sbuf, &sw);
    for (int r = 0; r < c->rows; r++) ck_assert_int_eq(sw.row_sum[r], rw.row_sum[r]);

    const size_t nacc = (size_t)(c->nr + 1) * (size_t)ldacc;
    int32_t *ra = xmalloc(nacc * sizeof(int32_t)), *sa = xmalloc(nacc * sizeof(int32_t));
    for (size_t i = 0; i < nacc; i++) ra[i] = sa[i] = (int32_t)0x5a5a5a5a;
    const int32_t *zp = c->zp_mode ? wzp : NULL, *zc = c->zx_cols ? zxc : NULL;
    oct_ref_qgemm(&rw, c->r0, c->nr, c->cols, x, ldx, x_zp, zc, zp, ra, ldacc);
    ks->qgemm(&sw, c->r0, c->nr, c->cols, x, ldx, x_zp, zc, zp, sa, ldacc);
    for (size_t i = 0; i < nacc; i++)
        ck_assert_msg(sa[i] == ra[i],
                      "%s qgemm rows %d k %d cols %d (r0 %d nr %d, u8 %d, trans %d, extreme %d, zp %d, "
                      "zx_cols %d): acc[%zu / ldacc %lld] = %d, ref %d",
                      what, c->rows, c->k, c->cols, c->r0, c->nr, c->w_u8, c->w_trans, c->extreme,
                      c->zp_mode, c->zx_cols, i, (long long)ldacc, sa[i], ra[i]);
    free(w);
    free(x);
    free(wzp);
    free(zxc);
    free(rbuf);
    free(sbuf);
    free(ra);
    free(sa);
}

static gemm_case random_gemm_case(void) {
    gemm_case c;
    c.rows = rin(1, 70);
    c.k = rnext() % 4 ? rin(1, 300) : rin(1, 12);
    c.cols = rin(1, 100);
    c.r0 = rnext() % 2 ? 0 : rin(0, c.rows - 1);
    c.nr = rin(1, c.rows - c.r0);
    c.w_u8 = rnext() % 3 == 0;
    c.w_trans = rnext() % 3 == 0;
    c.extreme = rnext() % 5 == 0;
    c.zp_mode = rin(0, 2);
    c.zx_cols = rnext() % 3 == 0;
    c.pad = rnext() % 2 ? rin(1, 9) : 0;
    return c;
}

static void gemm_suite(const char *what, const oct_quant_kernel_set *ks, int random_cases) {
    /* Fixed shapes around the tile edges (8 x 48, 4 x 24, 4 x 16, 8 x 12; 96-column passes). */
    static const int shapes[][3] = {{1, 1, 1},   {8, 4, 48},  {8, 256, 96}, {9, 5, 97},  {16, 300, 100},
                                    {70, 3, 1},  {7, 301, 49}, {33, 257, 95}, {4, 2, 16}, {12, 129, 25}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int variant = 0; variant < 4; variant++) {
            gemm_case c = {shapes[i][0], shapes[i][1], shapes[i][2], 0, shapes[i][0], variant & 1, 0,
                           variant == 3, variant >= 2 ? 1 : 0, variant == 1, variant & 1};
            compare_gemm(what, ks, &c);
        }
    for (int i = 0; i < random_cases; i++) {
        const gemm_case c = random_gemm_case();
        compare_gemm(what, ks, &c);
    }
    /* |(w - zw)(x - zx)| reaches 255 * 255: 40000 of them exceed 2^31, so the sums wrap. */
    gemm_case wrap = {3, 40000, 20, 0, 3, 0, 0, 1, 1, 0, 0};
    compare_gemm(what, ks, &wrap);
    wrap.zx_cols = 1;
    wrap.r0 = 1;
    wrap.nr = 2;
    compare_gemm(what, ks, &wrap);
}

START_TEST(qgemm_direct) {
    set_case sets[8];
    const int n = direct_sets(sets);
    for (int i = 0; i < n; i++) gemm_suite(sets[i].what, sets[i].ks, 300);
}
END_TEST

/* ---------------------------------------------------------------- requant */

static void compare_requant(const char *what, const oct_quant_kernel_set *ks, int rows, int cols, int mode) {
    const int64_t ldacc = cols + rin(0, 5);
    const int r0 = rin(0, 3); /* parameters are indexed by absolute row */
    int32_t *acc = xmalloc(sizeof(int32_t) * (size_t)(rows * ldacc));
    float *scale = xmalloc(sizeof(float) * (size_t)(r0 + rows));
    int32_t *bias = xmalloc(sizeof(int32_t) * (size_t)(r0 + rows));
    for (int64_t i = 0; i < rows * ldacc; i++) {
        switch (mode) {
        case 0: acc[i] = rin(-40000, 40000); break;               /* typical, in range */
        case 1: acc[i] = (int32_t)(rnext() << 8 ^ rnext()); break; /* the whole int32 range */
        default: acc[i] = 2 * rin(-300, 300) + 1; break;          /* odd: exact ties at m = 0.5 */
        }
    }
    for (int r = 0; r < r0 + rows; r++) {
        scale[r] = mode == 2 ? 0.5f : (float)rin(1, 100000) * 1e-7f;
        bias[r] = mode == 1 ? (int32_t)(rnext() << 8) : rin(-5000, 5000);
    }
    oct_requant q = {scale, rnext() & 1, rnext() % 3 ? bias : NULL, 0, 0, 0, rnext() & 1, NULL};
    q.zp = q.out_s8 ? rin(-128, 127) : rin(0, 255);
    q.qmin = q.out_s8 ? -128 : 0;
    q.qmax = q.out_s8 ? 127 : 255;
    if (rnext() % 3 == 0) q.qmin = q.zp; /* a fused Relu */
    if (rnext() % 4 == 0) q.qmax = q.qmin + (q.qmax - q.qmin) / 2;
    const int trans = rnext() % 3 == 0;
    const int64_t y_rs = trans ? 1 : cols + 3, y_cs = trans ? rows + 2 : 1;
    const size_t ny = trans ? (size_t)(cols * y_cs) : (size_t)(rows * y_rs);
    uint8_t *ry = xmalloc(ny), *sy = xmalloc(ny);
    memset(ry, 0xa5, ny);
    memset(sy, 0xa5, ny);
    oct_ref_requant(acc, ldacc, r0, rows, cols, &q, ry, y_rs, y_cs);
    /* half the cases with an activation table: ref's against its plain bytes mapped afterwards */
    uint8_t table[256];
    for (int i = 0; i < 256; i++) table[i] = (uint8_t)rnext();
    if (rnext() % 2) {
        uint8_t *mapped = xmalloc(ny);
        memcpy(mapped, ry, ny);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) mapped[r * y_rs + c * y_cs] = table[ry[r * y_rs + c * y_cs]];
        q.table = table;
        oct_ref_requant(acc, ldacc, r0, rows, cols, &q, ry, y_rs, y_cs);
        ck_assert_msg(memcmp(mapped, ry, ny) == 0, "%s: oct_ref_requant with a table differs from the mapped bytes",
                      what);
        free(mapped);
    }
    ks->requant(acc, ldacc, r0, rows, cols, &q, sy, y_rs, y_cs);
    for (size_t i = 0; i < ny; i++)
        ck_assert_msg(sy[i] == ry[i], "%s requant %d x %d (mode %d, s8 %d, zp %d, clamp %d..%d, y_cs %lld, table %d): "
                      "byte %zu = %d, ref %d", what, rows, cols, mode, q.out_s8, q.zp, q.qmin, q.qmax,
                      (long long)y_cs, q.table != NULL, i, sy[i], ry[i]);
    free(acc);
    free(scale);
    free(bias);
    free(ry);
    free(sy);
}

static void requant_suite(const char *what, const oct_quant_kernel_set *ks, int cases) {
    for (int i = 0; i < cases; i++) compare_requant(what, ks, rin(1, 9), rin(1, 100), i % 3);
}

START_TEST(requant_direct) {
    set_case sets[8];
    const int n = direct_sets(sets);
    for (int i = 0; i < n; i++) requant_suite(sets[i].what, sets[i].ks, 300);
}
END_TEST

/* ---------------------------------------------------------------- dispatch */

START_TEST(dispatch_levels) {
    /* The int8 set each level must select on this CPU. */
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        const oct_kernel_table *t = select_isa((oct_isa)isa);
        ck_assert_int_eq(t->isa, isa);
        const oct_quant_kernel_set *want = &oct_ref_quant_kernels;
#if defined(__x86_64__)
        if (isa == OCT_ISA_AVX2 || isa == OCT_ISA_AVX512) want = &oct_avx2_quant_kernels;
        if (isa == OCT_ISA_VNNI)
            want = oct_isa_supported(OCT_ISA_AVX512) && __builtin_cpu_supports("avx512vnni")
                       ? &oct_vnni_quant_kernels
                       : &oct_avxvnni_quant_kernels;
#endif
#if defined(__aarch64__)
        if (isa == OCT_ISA_NEON) want = &oct_neon_quant_kernels;
        if (isa == OCT_ISA_DOTPROD) want = &oct_dotprod_quant_kernels;
#endif
        ck_assert_msg(t->quant == want, "OCTET_ISA=%s selected int8 set %s", oct_isa_name((oct_isa)isa),
                      t->quant->name);
        /* The set as the ops get it, on a smaller sweep. */
        gemm_suite(t->quant->name, t->quant, 40);
        requant_suite(t->quant->name, t->quant, 40);
    }
    test_default_isa();
    /* Without OCTET_ISA the best level is taken. */
    const oct_kernel_table *best = oct_kernels();
#if defined(__x86_64__)
    if (oct_isa_supported(OCT_ISA_VNNI)) ck_assert_int_eq(best->isa, OCT_ISA_VNNI);
#endif
#if defined(__aarch64__)
    ck_assert_int_eq(best->isa, oct_isa_supported(OCT_ISA_DOTPROD) ? OCT_ISA_DOTPROD : OCT_ISA_NEON);
#endif
    ck_assert_ptr_nonnull(best->quant);
}
END_TEST

/* ---------------------------------------------------------------- QLinearConv through the API */

/* Runs `model` (bytes) at one ISA level with `threads`; returns the malloc'ed output bytes. */
static uint8_t *run_model(const void *model, size_t size, oct_isa isa, int threads, int n_in,
                          const octet_tensor *inputs, size_t *out_bytes) {
    const oct_kernel_table *t = select_isa(isa);
    ck_assert_int_eq(t->isa, isa);
    octet_error err = {0};
    octet_model *m = octet_model_load_memory(model, size, NULL, &err);
    ck_assert_msg(m != NULL, "load: %s", err.msg);
    octet_session_options opts = {.threads = threads};
    octet_session *s = octet_session_create(m, &opts, &err);
    ck_assert_msg(s != NULL, "session: %s", err.msg);
    octet_tensor out;
    ck_assert_msg(octet_session_run(s, n_in, NULL, inputs, 1, NULL, &out, &err) == 0, "run at %s: %s",
                  oct_isa_name(isa), err.msg);
    const int64_t n = octet_tensor_numel(&out);
    ck_assert(n > 0);
    *out_bytes = (size_t)n * octet_dtype_size(out.dtype);
    uint8_t *bytes = xmalloc(*out_bytes);
    memcpy(bytes, out.data, *out_bytes);
    octet_tensor_release(&out);
    octet_session_free(s);
    octet_model_free(m);
    return bytes;
}

/* Every level the CPU supports (and 1 or 3 threads) gives the bytes of ref; returns ref's output. */
static uint8_t *same_at_every_level(const char *what, const void *model, size_t size, int n_in,
                                    const octet_tensor *inputs, size_t *n) {
    uint8_t *ref = run_model(model, size, OCT_ISA_REF, 1, n_in, inputs, n);
    for (int isa = OCT_ISA_REF + 1; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        for (int threads = 1; threads <= 3; threads += 2) {
            size_t m;
            uint8_t *got = run_model(model, size, (oct_isa)isa, threads, n_in, inputs, &m);
            ck_assert_uint_eq(m, *n);
            for (size_t i = 0; i < m; i++)
                ck_assert_msg(got[i] == ref[i], "%s at %s, %d threads: byte %zu = %d, ref %d", what,
                              oct_isa_name((oct_isa)isa), threads, i, got[i], ref[i]);
            free(got);
        }
    }
    test_default_isa();
    return ref;
}

START_TEST(node_test_qlinearconv) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/onnx-node-tests/test_qlinearconv", test_shared_dir());
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    void *model;
    size_t size;
    octet_error err = {0};
    ck_assert_msg(oct_read_file(path, (size_t)1 << 26, &model, &size, &err) == 0, "%s", err.msg);
    octet_tensor in[8], want;
    for (int i = 0; i < 8; i++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, i);
        ck_assert_msg(oct_tensor_pb_read(path, &in[i], NULL, &err) == 0, "%s", err.msg);
    }
    snprintf(path, sizeof path, "%s/test_data_set_0/output_0.pb", dir);
    ck_assert_msg(oct_tensor_pb_read(path, &want, NULL, &err) == 0, "%s", err.msg);
    size_t n;
    uint8_t *got = same_at_every_level("test_qlinearconv", model, size, 8, in, &n);
    ck_assert_uint_eq(n, (size_t)octet_tensor_numel(&want) * octet_dtype_size(want.dtype));
    ck_assert_msg(memcmp(got, want.data, n) == 0, "test_qlinearconv differs from its expected output");
    free(got);
    for (int i = 0; i < 8; i++) free(in[i].data);
    free(want.data);
    free(model);
}
END_TEST

/* A one-node QLinearConv model with constant weights and quantization parameters. */
typedef struct {
    int64_t n, c, h, w, m, kh, kw, group, pad, stride;
    int w_u8; /* uint8 weights with per-channel zero points (else int8 symmetric) */
} conv_spec;

static Onnx__TensorProto *mk_init(Onnx__TensorProto *t, const char *name, int dt, int rank, int64_t *dims,
                                  void *raw, size_t len) {
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = dt;
    t->n_dims = (size_t)rank;
    t->dims = dims;
    t->has_raw_data = 1;
    t->raw_data.data = raw;
    t->raw_data.len = len;
    return t;
}

static void *conv_model(const conv_spec *s, size_t *size) {
    const int64_t cg = s->c / s->group, kvol = s->kh * s->kw, wn = s->m * cg * kvol;
    uint8_t *w = xmalloc((size_t)wn), wz[512], xz = (uint8_t)rin(0, 255), yz = (uint8_t)rin(100, 150);
    float ws[512], xs = 0.02f, ys = 0.0f;
    int32_t bias[512];
    ck_assert(s->m <= 512);
    for (int64_t i = 0; i < wn; i++) w[i] = (uint8_t)rin(0, 255);
    for (int64_t i = 0; i < s->m; i++) {
        wz[i] = s->w_u8 ? (uint8_t)rin(100, 156) : 0;
        ws[i] = (float)rin(1, 100) * 1e-4f;
        bias[i] = rin(-20000, 20000);
    }
    /* An output scale that keeps most values in range and saturates a few. */
    ys = xs * 0.005f * (float)(cg * kvol) * 4.f / 127.f;
    static int64_t wdims[4], mdims[1], xdims[4];
    const int64_t wd[4] = {s->m, cg, s->kh, s->kw}, xd[4] = {s->n, s->c, s->h, s->w};
    memcpy(wdims, wd, sizeof wd);
    memcpy(xdims, xd, sizeof xd);
    mdims[0] = s->m;
    Onnx__TensorProto t[8], *tp[8];
    mk_init(&t[0], "xs", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, NULL, &xs, 4);
    mk_init(&t[1], "xz", ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 0, NULL, &xz, 1);
    mk_init(&t[2], "w", s->w_u8 ? ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 : ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 4,
            wdims, w, (size_t)wn);
    mk_init(&t[3], "ws", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, mdims, ws, 4 * (size_t)s->m);
    mk_init(&t[4], "wz", s->w_u8 ? ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 : ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 1,
            mdims, wz, (size_t)s->m);
    mk_init(&t[5], "ys", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, NULL, &ys, 4);
    mk_init(&t[6], "yz", ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 0, NULL, &yz, 1);
    mk_init(&t[7], "b", ONNX__TENSOR_PROTO__DATA_TYPE__INT32, 1, mdims, bias, 4 * (size_t)s->m);
    for (int i = 0; i < 8; i++) tp[i] = &t[i];

    Onnx__NodeProto node;
    onnx__node_proto__init(&node);
    static char *ins[9] = {"x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"}, *outs[1] = {"y"};
    node.name = "conv";
    node.op_type = "QLinearConv";
    node.n_input = 9;
    node.input = ins;
    node.n_output = 1;
    node.output = outs;
    Onnx__AttributeProto a[4], *ap[4];
    int64_t kshape[2] = {s->kh, s->kw}, pads[4] = {s->pad, s->pad, s->pad, s->pad},
            strides[2] = {s->stride, s->stride};
    static char *anames[4] = {"kernel_shape", "pads", "strides", "group"};
    int64_t *avals[3] = {kshape, pads, strides};
    const size_t alens[3] = {2, 4, 2};
    for (int i = 0; i < 4; i++) {
        onnx__attribute_proto__init(&a[i]);
        a[i].name = anames[i];
        a[i].has_type = 1;
        if (i < 3) {
            a[i].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
            a[i].n_ints = alens[i];
            a[i].ints = avals[i];
        } else {
            a[i].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            a[i].has_i = 1;
            a[i].i = s->group;
        }
        ap[i] = &a[i];
    }
    node.n_attribute = 4;
    node.attribute = ap;

    /* Graph input x and output y (shape left to inference). */
    Onnx__ValueInfoProto vi[2], *vin[1] = {&vi[0]}, *vout[1] = {&vi[1]};
    Onnx__TypeProto ty[2];
    Onnx__TypeProto__Tensor tt[2];
    Onnx__TensorShapeProto shape;
    Onnx__TensorShapeProto__Dimension dim[4], *dp[4];
    onnx__tensor_shape_proto__init(&shape);
    for (int i = 0; i < 4; i++) {
        onnx__tensor_shape_proto__dimension__init(&dim[i]);
        dim[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        dim[i].dim_value = xdims[i];
        dp[i] = &dim[i];
    }
    shape.n_dim = 4;
    shape.dim = dp;
    static char *vnames[2] = {"x", "y"};
    for (int i = 0; i < 2; i++) {
        onnx__value_info_proto__init(&vi[i]);
        onnx__type_proto__init(&ty[i]);
        onnx__type_proto__tensor__init(&tt[i]);
        vi[i].name = vnames[i];
        vi[i].type = &ty[i];
        ty[i].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        ty[i].tensor_type = &tt[i];
        tt[i].has_elem_type = 1;
        tt[i].elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
        tt[i].shape = i == 0 ? &shape : NULL;
    }

    Onnx__GraphProto graph;
    onnx__graph_proto__init(&graph);
    Onnx__NodeProto *np[1] = {&node};
    graph.name = "qconv";
    graph.n_node = 1;
    graph.node = np;
    graph.n_initializer = 8;
    graph.initializer = tp;
    graph.n_input = 1;
    graph.input = vin;
    graph.n_output = 1;
    graph.output = vout;
    Onnx__OperatorSetIdProto opset, *ops[1] = {&opset};
    onnx__operator_set_id_proto__init(&opset);
    opset.domain = "";
    opset.has_version = 1;
    opset.version = 13;
    Onnx__ModelProto model;
    onnx__model_proto__init(&model);
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.graph = &graph;
    model.n_opset_import = 1;
    model.opset_import = ops;
    *size = onnx__model_proto__get_packed_size(&model);
    void *bytes = xmalloc(*size);
    onnx__model_proto__pack(&model, bytes);
    free(w);
    return bytes;
}

START_TEST(random_qlinearconv) {
    static const conv_spec specs[] = {
        {1, 24, 19, 17, 40, 3, 3, 1, 1, 1, 0},  /* 3x3, padding, K = 216 */
        {2, 16, 11, 13, 22, 3, 3, 2, 1, 2, 1},  /* grouped (11 channels a group), strided, uint8 w */
        {1, 64, 14, 14, 36, 1, 1, 1, 0, 1, 0},  /* 1x1: the GEMM reads the input directly */
        {1, 160, 9, 9, 20, 3, 3, 1, 1, 1, 1},   /* K = 1440: several k chunks; uint8 w */
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        const conv_spec *s = &specs[i];
        size_t size;
        void *model = conv_model(s, &size);
        octet_tensor x = {OCTET_UINT8, 4, {s->n, s->c, s->h, s->w}, NULL};
        const size_t xn = (size_t)(s->n * s->c * s->h * s->w);
        uint8_t *xd = xmalloc(xn);
        for (size_t j = 0; j < xn; j++) xd[j] = (uint8_t)(j % 17 == 0 ? 255 * (int)(rnext() & 1) : rin(0, 255));
        x.data = xd;
        char what[64];
        snprintf(what, sizeof what, "random QLinearConv #%zu", i);
        size_t n;
        uint8_t *y = same_at_every_level(what, model, size, 1, &x, &n);
        /* The outputs must not all be the clamp: then they could not tell kernels apart. */
        int distinct = 0;
        for (size_t j = 1; j < n; j++) distinct |= y[j] != y[0];
        ck_assert_msg(distinct, "%s: a constant output", what);
        free(y);
        free(xd);
        free(model);
    }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("quant_isa");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, qgemm_direct);
    tcase_add_test(tc, requant_direct);
    tcase_add_test(tc, dispatch_levels);
    suite_add_tcase(s, tc);
    TCase *api = tcase_create("api");
    tcase_set_timeout(api, 300);
    tcase_add_test(api, node_test_qlinearconv);
    tcase_add_test(api, random_qlinearconv);
    suite_add_tcase(s, api);
    return s;
}

int main(void) {
    return test_run_suite(suite());
}
