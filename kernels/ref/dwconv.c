/* The depthwise band loop shared by every ISA (the method is in dwconv_kernels.h): plan geometry,
   phase-plane copies of the padded input, the row-wise write-back; plus the portable C primitives
   (the ref twins of the per-ISA ones). */
#include <math.h>
#include <string.h>

#include "dwconv_kernels.h"

/* Floats of phase planes a band may span: with the accumulator band the scratch stays in L1/L2. */
enum { BAND_PLANE_FLOATS = 4096 };
/* Bounds that keep every buffer size and index far from overflow. */
#define DW_MAX_WIDTH ((int64_t)1 << 24)
#define DW_MAX_PAD ((int64_t)1 << 24)

static int64_t round_up16(int64_t v) { return (v + 15) / 16 * 16; }

int oct_dw_plan_init(const oct_conv_geom *g, oct_dw_plan *pl) {
    memset(pl, 0, sizeof *pl);
    if (g->in[0] != 1 || g->out[0] != 1 || g->k[0] != 1 || g->pad[0] != 0) return 0;
    for (int d = 1; d < 3; d++) {
        if (g->k[d] < 1 || g->k[d] > OCT_DW_MAX_TAPS || (g->k[d] > 1 && g->dil[d] != 1)) return 0;
        if (g->stride[d] < 1 || g->stride[d] > OCT_DW_MAX_STRIDE) return 0;
        if (g->pad[d] < 0 || g->pad[d] > DW_MAX_PAD) return 0;
        if (g->in[d] < 1 || g->out[d] < 1 || g->in[d] > DW_MAX_WIDTH || g->out[d] > DW_MAX_WIDTH) return 0;
    }
    if (g->k[1] * g->k[2] > OCT_DW_MAX_TAPS) return 0;
    pl->ih = g->in[1], pl->iw = g->in[2], pl->oh = g->out[1], pl->ow = g->out[2];
    pl->kh = (int)g->k[1], pl->kw = (int)g->k[2];
    pl->sh = (int)g->stride[1], pl->sw = (int)g->stride[2];
    pl->ph = (int)g->pad[1], pl->pw = (int)g->pad[2];
    pl->na = pl->sh < pl->kh ? pl->sh : pl->kh;
    pl->nb = pl->sw < pl->kw ? pl->sw : pl->kw;
    pl->ntaps = pl->kh * pl->kw;
    pl->wq = pl->ow + (pl->kw - 1) / pl->sw;
    const int64_t halo = (pl->kh - 1) / pl->sh, planes = (int64_t)pl->na * pl->nb;
    int64_t band = BAND_PLANE_FLOATS / (pl->wq * planes);
    if (band < 1) band = 1;
    if (band > pl->oh) band = pl->oh;
    pl->band = band;
    pl->plane_stride = round_up16((band + halo) * pl->wq + OCT_DW_SLACK);
    pl->acc_offset = planes * pl->plane_stride;
    for (int i = 0; i < pl->kh; i++)
        for (int j = 0; j < pl->kw; j++) {
            const int plane = (i % pl->sh) * pl->nb + j % pl->sw;
            pl->tap_off[i * pl->kw + j] = plane * pl->plane_stride + (i / pl->sh) * pl->wq + j / pl->sw;
        }
    return 1;
}

size_t oct_dw_scratch_bytes(const oct_dw_plan *pl) {
    return (size_t)(pl->acc_offset + round_up16(pl->band * pl->wq + OCT_DW_SLACK)) * sizeof(float);
}

/* Columns [*lo, *hi) of phase column b whose padded column j*sw + b - pw lies inside the input. */
static void valid_cols(const oct_dw_plan *pl, int b, int64_t *lo, int64_t *hi) {
    const int64_t first = pl->pw - b; /* input column of j = 0 is -first */
    *lo = first > 0 ? (first + pl->sw - 1) / pl->sw : 0;
    const int64_t last = pl->iw - 1 + first; /* j*sw <= last */
    *hi = last >= 0 ? last / pl->sw + 1 : 0;
    if (*hi > pl->wq) *hi = pl->wq;
    if (*lo > *hi) *lo = *hi;
}

/* One input row into its nb phase rows dst[b], element by element: strides 3 and 4, and phases
   cut short by a narrow kernel. */
static void fill_row_generic(const oct_dw_plan *pl, const float *xf, const uint8_t *xq, uint8_t x_xor,
                             int32_t x_zp, float *const *dst) {
    for (int b = 0; b < pl->nb; b++) {
        int64_t lo, hi;
        valid_cols(pl, b, &lo, &hi);
        const int64_t first = lo * pl->sw + b - pl->pw; /* input column of phase column lo */
        float *d = dst[b];
        for (int64_t j = 0; j < lo; j++) d[j] = 0.f;
        for (int64_t j = lo; j < hi; j++) {
            const int64_t c = first + (j - lo) * pl->sw;
            d[j] = xq ? (float)((int32_t)(uint8_t)(xq[c] ^ x_xor) - x_zp) : xf[c];
        }
        for (int64_t j = hi; j < pl->wq; j++) d[j] = 0.f;
    }
}

/* Plane rows [0, rows) of every phase plane for the band starting at output row r0. Per row phase
   a, the rows inside the input are one run (one fill call); the padding rows around it are zeroed
   after the run, whose last row may have written into them. */
static void fill_planes(const oct_dw_kernels *k, const oct_dw_plan *pl, const float *xf, const uint8_t *xq,
                        uint8_t x_xor, int32_t x_zp, int64_t r0, int64_t rows, float *planes) {
    const int fast = pl->sw <= 2 && pl->nb == pl->sw;
    for (int a = 0; a < pl->na; a++) {
        float *dst[OCT_DW_MAX_STRIDE];
        for (int b = 0; b < pl->nb; b++) dst[b] = planes + (a * pl->nb + b) * pl->plane_stride;
        /* plane row i reads input row (r0 + i) * sh + a - ph */
        const int64_t top = pl->ph - a - r0 * pl->sh, bottom = pl->ih - 1 + pl->ph - a;
        int64_t i0 = top > 0 ? (top + pl->sh - 1) / pl->sh : 0;
        int64_t i1 = bottom >= 0 ? bottom / pl->sh - r0 + 1 : 0;
        if (i0 > rows) i0 = rows;
        if (i1 > rows) i1 = rows;
        if (i1 < i0) i1 = i0;
        const int64_t ih0 = (r0 + i0) * pl->sh + a - pl->ph;
        if (fast && i1 > i0) {
            const int64_t n = pl->sw * pl->wq; /* padded columns the phase rows cover */
            const oct_dw_rows run = {.rows = i1 - i0, .ld_src = pl->sh * pl->iw, .n = n,
                                     .lo = pl->pw < n ? pl->pw : n,
                                     .hi = pl->pw + pl->iw < n ? pl->pw + pl->iw : n,
                                     .ld_dst = pl->wq, .split = pl->sw == 2};
            float *d0 = dst[0] + i0 * pl->wq, *d1 = pl->sw == 2 ? dst[1] + i0 * pl->wq : NULL;
            if (xq) k->fill_u8(&run, xq + ih0 * pl->iw, x_xor, x_zp, d0, d1);
            else k->fill_f32(&run, xf + ih0 * pl->iw, d0, d1);
        } else {
            for (int64_t i = i0; i < i1; i++) {
                float *row[OCT_DW_MAX_STRIDE];
                for (int b = 0; b < pl->nb; b++) row[b] = dst[b] + i * pl->wq;
                const int64_t at = (ih0 + (i - i0) * pl->sh) * pl->iw;
                fill_row_generic(pl, xf ? xf + at : NULL, xq ? xq + at : NULL, x_xor, x_zp, row);
            }
        }
        for (int b = 0; b < pl->nb; b++) {
            if (i0) memset(dst[b], 0, (size_t)(i0 * pl->wq) * sizeof(float));
            /* and the slack, which vectors running past the band read */
            memset(dst[b] + i1 * pl->wq, 0, (size_t)((rows - i1) * pl->wq + OCT_DW_SLACK) * sizeof(float));
        }
    }
}

/* The bands of one channel: fill, taps, then write(rows of the band) for each. */
typedef void (*band_writer)(const void *ctx, int64_t r0, int64_t rows, const float *acc);

static void run_bands(const oct_dw_kernels *k, const oct_dw_plan *pl, const float *xf, const uint8_t *xq,
                      uint8_t x_xor, int32_t x_zp, const float *w, void *scratch, band_writer write,
                      const void *ctx) {
    float *planes = scratch, *acc = planes + pl->acc_offset;
    const int64_t halo = (pl->kh - 1) / pl->sh;
    for (int64_t r0 = 0; r0 < pl->oh; r0 += pl->band) {
        const int64_t rows = pl->oh - r0 < pl->band ? pl->oh - r0 : pl->band;
        fill_planes(k, pl, xf, xq, x_xor, x_zp, r0, rows + halo, planes);
        k->taps(planes, pl->tap_off, w, pl->ntaps, rows * pl->wq, acc);
        write(ctx, r0, rows, acc);
    }
}

typedef struct {
    const oct_dw_kernels *k;
    const oct_dw_plan *pl;
    float bias;
    const float *res;
    const oct_act *act;
    float *y;
    double *sum; /* NULL: no channel sum wanted */
} f32_band;

static void write_f32(const void *ctx, int64_t r0, int64_t rows, const float *acc) {
    const f32_band *c = ctx;
    const int64_t at = r0 * c->pl->ow;
    c->k->epilogue_f32(acc, c->pl->wq, rows, c->pl->ow, c->bias, c->res ? c->res + at : NULL, c->act, c->y + at,
                       c->sum);
}

double oct_dw_conv_f32(const oct_dw_kernels *k, const oct_dw_plan *pl, const float *x, const float *w,
                       float bias, const float *res, const oct_act *act, float *y, int want_sum, void *scratch) {
    double sum = 0.0;
    const f32_band ctx = {k, pl, bias, res, act, y, want_sum ? &sum : NULL};
    run_bands(k, pl, x, NULL, 0, 0, w, scratch, write_f32, &ctx);
    return sum;
}

typedef struct {
    const oct_dw_kernels *k;
    const oct_dw_plan *pl;
    int32_t bias, zp;
    float m, lo, hi;
    int requant;
    void *y;
    int64_t *sum; /* NULL: no sum wanted */
} q8_band;

static void write_q8(const void *ctx, int64_t r0, int64_t rows, const float *acc) {
    const q8_band *c = ctx;
    const int64_t ow = c->pl->ow, at = r0 * ow;
    if (c->requant) {
        c->k->requant(acc, c->pl->wq, rows, ow, c->bias, c->m, c->lo, c->hi, c->zp, (uint8_t *)c->y + at, c->sum);
        return;
    }
    for (int64_t r = 0; r < rows; r++) {
        int32_t *yr = (int32_t *)c->y + at + r * ow;
        const float *ar = acc + r * c->pl->wq;
        for (int64_t i = 0; i < ow; i++) yr[i] = (int32_t)ar[i]; /* exact integers */
    }
}

int64_t oct_dw_conv_q8(const oct_dw_kernels *k, const oct_dw_plan *pl, const uint8_t *x, uint8_t x_xor,
                       int32_t x_zp, const int8_t *w, int32_t w_zp, const oct_requant *rq, int64_t row,
                       void *y, int want_sum, void *scratch) {
    float wf[OCT_DW_MAX_TAPS];
    for (int t = 0; t < pl->ntaps; t++) wf[t] = (float)((int32_t)w[t] - w_zp);
    int64_t sum = 0;
    q8_band ctx = {.k = k, .pl = pl, .y = y, .requant = rq != NULL, .sum = want_sum && rq ? &sum : NULL};
    if (rq) {
        ctx.bias = rq->bias ? rq->bias[row] : 0;
        ctx.m = rq->scale[rq->scale_per_row ? row : 0];
        ctx.lo = (float)(rq->qmin - rq->zp);
        ctx.hi = (float)(rq->qmax - rq->zp);
        ctx.zp = rq->zp;
    }
    run_bands(k, pl, NULL, x, x_xor, x_zp, wf, scratch, write_q8, &ctx);
    return sum;
}

/* ---- the portable primitives ----------------------------------------------------------------- */

/* Padded column c of a row run: the input inside [lo, hi), zero outside. */
static float col_u8(const oct_dw_rows *r, const uint8_t *src, int64_t c, uint8_t x_xor, int32_t x_zp) {
    return c >= r->lo && c < r->hi ? (float)((int32_t)(uint8_t)(src[c - r->lo] ^ x_xor) - x_zp) : 0.f;
}
static float col_f32(const oct_dw_rows *r, const float *src, int64_t c) {
    return c >= r->lo && c < r->hi ? src[c - r->lo] : 0.f;
}

static void fill_u8_ref(const oct_dw_rows *r, const uint8_t *src, uint8_t x_xor, int32_t x_zp, float *d0,
                        float *d1) {
    for (int64_t i = 0; i < r->rows; i++, src += r->ld_src, d0 += r->ld_dst, d1 = d1 ? d1 + r->ld_dst : NULL) {
        if (!r->split)
            for (int64_t j = 0; j < r->n; j++) d0[j] = col_u8(r, src, j, x_xor, x_zp);
        else
            for (int64_t j = 0; j < r->n / 2; j++) {
                d0[j] = col_u8(r, src, 2 * j, x_xor, x_zp);
                d1[j] = col_u8(r, src, 2 * j + 1, x_xor, x_zp);
            }
    }
}

static void fill_f32_ref(const oct_dw_rows *r, const float *src, float *d0, float *d1) {
    for (int64_t i = 0; i < r->rows; i++, src += r->ld_src, d0 += r->ld_dst, d1 = d1 ? d1 + r->ld_dst : NULL) {
        if (!r->split)
            for (int64_t j = 0; j < r->n; j++) d0[j] = col_f32(r, src, j);
        else
            for (int64_t j = 0; j < r->n / 2; j++) {
                d0[j] = col_f32(r, src, 2 * j);
                d1[j] = col_f32(r, src, 2 * j + 1);
            }
    }
}

static void taps_ref(const float *base, const int64_t *off, const float *w, int ntaps, int64_t n, float *acc) {
    for (int64_t i = 0; i < n; i++) acc[i] = 0.f;
    for (int t = 0; t < ntaps; t++) {
        const float *src = base + off[t], wt = w[t];
        for (int64_t i = 0; i < n; i++) acc[i] += wt * src[i];
    }
}

static void epilogue_f32_ref(const float *acc, int64_t ld_acc, int64_t rows, int64_t n, float bias,
                             const float *res, const oct_act *act, float *y, double *sum) {
    for (int64_t r = 0; r < rows; r++) {
        double row_sum = 0.0;
        for (int64_t i = 0; i < n; i++) {
            float v = acc[r * ld_acc + i] + bias;
            if (res) v += res[r * n + i];
            y[r * n + i] = oct_act_apply(act, v);
            row_sum += y[r * n + i];
        }
        if (sum) *sum += row_sum;
    }
}

static void requant_ref(const float *acc, int64_t ld_acc, int64_t rows, int64_t n, int32_t bias, float m,
                        float lo, float hi, int32_t zp, void *y, int64_t *sum) {
    uint8_t *out = y;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) {
            float v = (float)(int32_t)((uint32_t)(int32_t)acc[r * ld_acc + i] + (uint32_t)bias) * m;
            if (!(v >= lo)) v = lo;
            if (v > hi) v = hi;
            const int32_t q = (int32_t)rintf(v) + zp;
            out[r * n + i] = (uint8_t)q; /* the low byte, for int8 as well */
            if (sum) *sum += q;
        }
}

const oct_dw_kernels oct_ref_dw_kernels = {"ref", fill_u8_ref, fill_f32_ref, taps_ref, epilogue_f32_ref, requant_ref};
