/* Broadcasting binary kernels: arithmetic, Max/Min, PRelu, Pow and comparisons, per dtype.
   Each (dtype, op) pair gets an inner run specialised for the common stride patterns (both
   contiguous, one side a broadcast scalar) so those loops vectorise; other patterns take the
   strided loop. Signed integer arithmetic goes through the unsigned type to wrap like numpy. */
#include <math.h>

#include "bcast_walk.h"

/* Defines run_<name>: y = EXPR over p (from a) and q (from b); YT is the output element type. */
#define RUN(name, T, YT, EXPR)                                                                     \
    static void run_##name(const void *ctx, const void *const *in, const int64_t *s, void *py,     \
                           int64_t n) {                                                            \
        (void)ctx;                                                                                 \
        const T *a = in[0], *b = in[1];                                                            \
        YT *y = py;                                                                                \
        if (s[0] == 1 && s[1] == 1) {                                                              \
            for (int64_t j = 0; j < n; j++) { T p = a[j], q = b[j]; y[j] = (YT)(EXPR); }           \
        } else if (s[0] == 0 && s[1] == 1) {                                                       \
            const T p = a[0];                                                                      \
            for (int64_t j = 0; j < n; j++) { T q = b[j]; y[j] = (YT)(EXPR); }                     \
        } else if (s[0] == 1 && s[1] == 0) {                                                       \
            const T q = b[0];                                                                      \
            for (int64_t j = 0; j < n; j++) { T p = a[j]; y[j] = (YT)(EXPR); }                     \
        } else {                                                                                   \
            for (int64_t j = 0; j < n; j++) { T p = a[j * s[0]], q = b[j * s[1]]; y[j] = (YT)(EXPR); } \
        }                                                                                          \
    }

/* Integer power by squaring in wrapping unsigned arithmetic. A negative exponent gives the
   truncated real result: 1 for base 1, +-1 for base -1, else 0. */
static int64_t ipow(int64_t base, int64_t e) {
    if (e < 0) return base == 1 ? 1 : base == -1 ? ((e & 1) ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)base;
    for (uint64_t k = (uint64_t)e; k; k >>= 1) {
        if (k & 1) r *= b;
        b *= b;
    }
    return (int64_t)r;
}

/* float32 */
RUN(add_f32, float, float, p + q)
RUN(sub_f32, float, float, p - q)
RUN(mul_f32, float, float, p * q)
RUN(div_f32, float, float, p / q)
RUN(pow_f32, float, float, powf(p, q))
RUN(max_f32, float, float, (p > q || isnan(p)) ? p : q) /* NaN propagates, as np.maximum */
RUN(min_f32, float, float, (p < q || isnan(p)) ? p : q)
RUN(prelu_f32, float, float, p < 0.f ? p * q : p)
RUN(eq_f32, float, uint8_t, p == q)
RUN(gt_f32, float, uint8_t, p > q)
RUN(lt_f32, float, uint8_t, p < q)

/* Wide signed integers: wrap through the unsigned type; x / -1 is negation (INT_MIN / -1 traps). */
#define SIGNED_WIDE(T, UT, S)                                                                      \
    RUN(add_##S, T, T, (UT)p + (UT)q)                                                              \
    RUN(sub_##S, T, T, (UT)p - (UT)q)                                                              \
    RUN(mul_##S, T, T, (UT)p * (UT)q)                                                              \
    RUN(div_##S, T, T, q == 0 ? 0 : q == -1 ? (T)(0u - (UT)p) : p / q)                             \
    RUN(pow_##S, T, T, ipow(p, q))                                                                 \
    RUN(max_##S, T, T, p > q ? p : q)                                                              \
    RUN(min_##S, T, T, p < q ? p : q)                                                              \
    RUN(prelu_##S, T, T, p < 0 ? (T)((UT)p * (UT)q) : p)                                           \
    RUN(eq_##S, T, uint8_t, p == q)                                                                \
    RUN(gt_##S, T, uint8_t, p > q)                                                                 \
    RUN(lt_##S, T, uint8_t, p < q)
SIGNED_WIDE(int32_t, uint32_t, i32)
SIGNED_WIDE(int64_t, uint64_t, i64)

/* 8-bit integers: C promotes to int, so the result only needs wrapping back. */
#define NARROW(T, S)                                                                               \
    RUN(add_##S, T, T, p + q)                                                                      \
    RUN(sub_##S, T, T, p - q)                                                                      \
    RUN(mul_##S, T, T, p * q)                                                                      \
    RUN(div_##S, T, T, q == 0 ? 0 : p / q)                                                         \
    RUN(pow_##S, T, T, ipow(p, q))                                                                 \
    RUN(max_##S, T, T, p > q ? p : q)                                                              \
    RUN(min_##S, T, T, p < q ? p : q)                                                              \
    RUN(eq_##S, T, uint8_t, p == q)                                                                \
    RUN(gt_##S, T, uint8_t, p > q)                                                                 \
    RUN(lt_##S, T, uint8_t, p < q)
NARROW(int8_t, i8)
NARROW(uint8_t, u8)
RUN(prelu_i8, int8_t, int8_t, p < 0 ? p * q : p)
RUN(eq_bool, uint8_t, uint8_t, (p != 0) == (q != 0))

#define PICK(S)                                                                                    \
    switch (k) {                                                                                   \
    case OCT_BIN_ADD: return run_add_##S;                                                          \
    case OCT_BIN_SUB: return run_sub_##S;                                                          \
    case OCT_BIN_MUL: return run_mul_##S;                                                          \
    case OCT_BIN_DIV: return run_div_##S;                                                          \
    case OCT_BIN_POW: return run_pow_##S;                                                          \
    case OCT_BIN_MAX: return run_max_##S;                                                          \
    case OCT_BIN_MIN: return run_min_##S;                                                          \
    case OCT_BIN_EQUAL: return run_eq_##S;                                                         \
    case OCT_BIN_GREATER: return run_gt_##S;                                                       \
    case OCT_BIN_LESS: return run_lt_##S;                                                          \
    case OCT_BIN_PRELU: break;                                                                     \
    }

static oct_bcast_run_fn pick(oct_binary_kind k, octet_dtype dt) {
    switch (dt) {
    case OCTET_FLOAT:
        if (k == OCT_BIN_PRELU) return run_prelu_f32;
        PICK(f32)
        break;
    case OCTET_INT32:
        if (k == OCT_BIN_PRELU) return run_prelu_i32;
        PICK(i32)
        break;
    case OCTET_INT64:
        if (k == OCT_BIN_PRELU) return run_prelu_i64;
        PICK(i64)
        break;
    case OCTET_INT8:
        if (k == OCT_BIN_PRELU) return run_prelu_i8;
        PICK(i8)
        break;
    case OCTET_UINT8:
        /* PRelu of an unsigned value is the identity: its slope never applies */
        if (k == OCT_BIN_PRELU) return NULL;
        PICK(u8)
        break;
    case OCTET_BOOL:
        if (k == OCT_BIN_EQUAL) return run_eq_bool;
        break;
    }
    return NULL;
}

int oct_ref_binary(oct_binary_kind k, octet_dtype dt, const oct_bcast *bc, const void *a,
                   const void *b, void *y, int64_t begin, int64_t end) {
    oct_bcast_run_fn f = pick(k, dt);
    if (!f) return -1;
    int cmp = k == OCT_BIN_EQUAL || k == OCT_BIN_GREATER || k == OCT_BIN_LESS;
    const void *in[2] = {a, b};
    size_t es[2] = {octet_dtype_size(dt), octet_dtype_size(dt)};
    oct_bcast_walk(bc, in, es, y, cmp ? 1 : octet_dtype_size(dt), begin, end, f, NULL);
    return 0;
}

/* ---- Pow with mixed dtypes ------------------------------------------------------------------ */

static double load_as_double(octet_dtype dt, const void *p, int64_t i) {
    switch (dt) {
    case OCTET_FLOAT: return ((const float *)p)[i];
    case OCTET_INT32: return ((const int32_t *)p)[i];
    case OCTET_INT64: return (double)((const int64_t *)p)[i];
    case OCTET_INT8: return ((const int8_t *)p)[i];
    case OCTET_UINT8: return ((const uint8_t *)p)[i];
    case OCTET_BOOL: return ((const uint8_t *)p)[i] != 0;
    }
    return 0.0;
}

static int64_t load_as_int(octet_dtype dt, const void *p, int64_t i) {
    switch (dt) {
    case OCTET_INT32: return ((const int32_t *)p)[i];
    case OCTET_INT64: return ((const int64_t *)p)[i];
    case OCTET_INT8: return ((const int8_t *)p)[i];
    case OCTET_UINT8: return ((const uint8_t *)p)[i];
    default: return 0;
    }
}

/* Saturating double -> int64 (NaN gives 0), so that the final narrowing is defined behaviour. */
static int64_t double_to_i64(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

static void store_int(octet_dtype dt, void *p, int64_t i, int64_t v) {
    switch (dt) {
    case OCTET_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case OCTET_INT64: ((int64_t *)p)[i] = v; break;
    case OCTET_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case OCTET_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    default: break;
    }
}

typedef struct {
    octet_dtype base, exp;
} pow_types;

static int is_int(octet_dtype dt) {
    return dt == OCTET_INT32 || dt == OCTET_INT64 || dt == OCTET_INT8 || dt == OCTET_UINT8;
}

static void run_pow_mixed(const void *ctx, const void *const *in, const int64_t *s, void *y,
                          int64_t n) {
    const pow_types t = *(const pow_types *)ctx;
    for (int64_t j = 0; j < n; j++) {
        int64_t ia = j * s[0], ib = j * s[1];
        if (t.base == OCTET_FLOAT) {
            float e = (float)load_as_double(t.exp, in[1], ib);
            ((float *)y)[j] = powf(((const float *)in[0])[ia], e);
        } else if (is_int(t.exp)) {
            store_int(t.base, y, j, ipow(load_as_int(t.base, in[0], ia), load_as_int(t.exp, in[1], ib)));
        } else {
            double v = pow(load_as_double(t.base, in[0], ia), load_as_double(t.exp, in[1], ib));
            store_int(t.base, y, j, double_to_i64(v));
        }
    }
}

int oct_ref_pow_mixed(octet_dtype base_dt, octet_dtype exp_dt, const oct_bcast *bc, const void *a,
                      const void *b, void *y, int64_t begin, int64_t end) {
    if (base_dt != OCTET_FLOAT && !is_int(base_dt)) return -1;
    if (exp_dt != OCTET_FLOAT && !is_int(exp_dt)) return -1;
    pow_types t = {base_dt, exp_dt};
    const void *in[2] = {a, b};
    size_t es[2] = {octet_dtype_size(base_dt), octet_dtype_size(exp_dt)};
    oct_bcast_walk(bc, in, es, y, octet_dtype_size(base_dt), begin, end, run_pow_mixed, &t);
    return 0;
}
