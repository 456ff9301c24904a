/* The channel-blocked depthwise band driver shared by every ISA (the method is in
   dwconv_blocked.h): plan geometry, the zero padding, the two transposes around the tap loop, the
   per-channel write-back; plus the portable C primitives (the ref twins of the per-ISA ones). */
#include <string.h>

#include "dwconv_blocked.h"

/* Floats of lane scratch a band may span (128 KB): it and the pixel vectors stay in L2, and rows
   up to 150 wide still get bands of 11 rows or more (half this gave 4-row bands there, whose
   halo rows cost up to a third of the time: measured on the 112x112..150x150 layers). */
enum { BAND_LANE_FLOATS = 32768 };
/* Widest padded row the blocked path takes: one scratch row must fit the band budget. */
enum { MAX_WP = BAND_LANE_FLOATS / OCT_DWB_LANES / 2 };

static int64_t round_up16(int64_t v) { return (v + 15) / 16 * 16; }

int oct_dwb_plan_init(const oct_conv_geom *g, oct_dwb_plan *pl) {
    oct_dw_plan base; /* the same coverage and bounds as the per-channel path */
    memset(pl, 0, sizeof *pl);
    if (!oct_dw_plan_init(g, &base)) return 0;
    pl->ih = base.ih, pl->iw = base.iw, pl->oh = base.oh, pl->ow = base.ow;
    pl->kh = base.kh, pl->kw = base.kw, pl->sh = base.sh, pl->sw = base.sw, pl->ph = base.ph, pl->pw = base.pw;
    pl->ntaps = base.ntaps;
    pl->wp = (pl->ow - 1) * pl->sw + pl->kw;
    if (pl->wp < pl->pw + pl->iw) pl->wp = pl->pw + pl->iw;
    if (pl->wp > MAX_WP || pl->wp * pl->kh > BAND_LANE_FLOATS / OCT_DWB_LANES) return 0;
    int64_t band = (BAND_LANE_FLOATS / (pl->wp * OCT_DWB_LANES) - pl->kh) / pl->sh + 1;
    if (band < 1) band = 1;
    if (band > pl->oh) band = pl->oh;
    pl->band = band;
    pl->in_rows = (band - 1) * pl->sh + pl->kh;
    pl->acc_pitch = round_up16(band * pl->ow + OCT_DW_SLACK);
    pl->lanes_off = OCT_DWB_LANES * pl->acc_pitch;
    pl->out_off = pl->lanes_off + pl->in_rows * pl->wp * OCT_DWB_LANES;
    pl->total = pl->out_off + round_up16(band * pl->ow) * OCT_DWB_LANES;
    return 1;
}

size_t oct_dwb_scratch_bytes(const oct_dwb_plan *pl) { return (size_t)pl->total * sizeof(float); }

int64_t oct_dwb_rows_per_item(const oct_dwb_plan *pl, int64_t blocks, int threads) {
    if (threads <= 1 || blocks >= 4 * (int64_t)threads) return pl->oh;
    /* about four items per thread, each a whole number of bands */
    const int64_t bands = (pl->oh + pl->band - 1) / pl->band;
    int64_t per_block = (4 * (int64_t)threads + blocks - 1) / blocks;
    if (per_block > bands) per_block = bands;
    return (bands + per_block - 1) / per_block * pl->band;
}

/* Step 1: the input rows of the band at output row r0 (rows_in scratch rows) in lanes, with
   zero vectors for the padding rows and columns around them. */
static void fill_lanes(const oct_dwb_kernels *bk, const oct_dwb_plan *pl, const float *xf, const uint8_t *xq,
                       int64_t x_cs, uint8_t x_xor, int32_t x_zp, int nch, int64_t r0, int64_t rows_in,
                       float *lanes) {
    const int64_t first = r0 * pl->sh - pl->ph; /* input row of scratch row 0 */
    int64_t i0 = first < 0 ? -first : 0, i1 = pl->ih - first;
    if (i0 > rows_in) i0 = rows_in;
    if (i1 > rows_in) i1 = rows_in;
    if (i1 < i0) i1 = i0;
    const int64_t row = pl->wp * OCT_DWB_LANES, right = pl->wp - pl->pw - pl->iw;
    memset(lanes, 0, (size_t)(i0 * row) * sizeof(float));
    for (int64_t i = i0; i < i1; i++) {
        float *d = lanes + i * row;
        memset(d, 0, (size_t)(pl->pw * OCT_DWB_LANES) * sizeof(float));
        memset(d + (pl->pw + pl->iw) * OCT_DWB_LANES, 0, (size_t)(right * OCT_DWB_LANES) * sizeof(float));
    }
    memset(lanes + i1 * row, 0, (size_t)((rows_in - i1) * row) * sizeof(float));
    if (i1 == i0) return;
    const int64_t at = (first + i0) * pl->iw, n = (i1 - i0) * pl->iw;
    float *dst = lanes + (i0 * pl->wp + pl->pw) * OCT_DWB_LANES;
    if (xq) bk->to_lanes_u8(xq + at, x_cs, nch, n, pl->iw, x_xor, x_zp, dst, pl->wp);
    else bk->to_lanes_f32(xf + at, x_cs, nch, n, pl->iw, dst, pl->wp);
}

/* Steps 1-3 for one band: leaves channel l's acc of the band's rows * ow pixels at
   scratch + l * acc_pitch. */
static void band_acc(const oct_dwb_kernels *bk, const oct_dwb_plan *pl, const float *xf, const uint8_t *xq,
                     int64_t x_cs, uint8_t x_xor, int32_t x_zp, int nch, const float *w, int64_t r0, int64_t rows,
                     float *scratch) {
    float *lanes = scratch + pl->lanes_off, *out = scratch + pl->out_off;
    fill_lanes(bk, pl, xf, xq, x_cs, x_xor, x_zp, nch, r0, (rows - 1) * pl->sh + pl->kh, lanes);
    bk->taps(pl, lanes, w, rows, out);
    bk->from_lanes(out, rows * pl->ow, nch, scratch, pl->acc_pitch);
}

void oct_dwb_conv_f32(const oct_dwb_kernels *bk, const oct_dw_kernels *k, const oct_dwb_plan *pl,
                      const float *x, int64_t x_cs, int nch, const float *w, const float *bias, const float *res,
                      const oct_act *act, float *y, int64_t y_cs, int64_t r0, int64_t r1, double *sums,
                      void *scratch) {
    float *acc = scratch;
    for (int64_t b0 = r0; b0 < r1; b0 += pl->band) {
        const int64_t rows = r1 - b0 < pl->band ? r1 - b0 : pl->band, at = b0 * pl->ow;
        band_acc(bk, pl, x, NULL, x_cs, 0, 0, nch, w, b0, rows, acc);
        for (int l = 0; l < nch; l++)
            k->epilogue_f32(acc + l * pl->acc_pitch, pl->acc_pitch, 1, rows * pl->ow, bias ? bias[l] : 0.f,
                            res ? res + l * y_cs + at : NULL, act, y + l * y_cs + at, sums ? &sums[l] : NULL);
    }
}

void oct_dwb_conv_q8(const oct_dwb_kernels *bk, const oct_dw_kernels *k, const oct_dwb_plan *pl,
                     const uint8_t *x, int64_t x_cs, uint8_t x_xor, int32_t x_zp, int nch, const float *w,
                     const oct_requant *rq, int64_t m0, void *y, int64_t y_cs, int64_t r0, int64_t r1,
                     int64_t *sums, void *scratch) {
    float *acc = scratch;
    const float lo = rq ? (float)(rq->qmin - rq->zp) : 0.f, hi = rq ? (float)(rq->qmax - rq->zp) : 0.f;
    for (int64_t b0 = r0; b0 < r1; b0 += pl->band) {
        const int64_t rows = r1 - b0 < pl->band ? r1 - b0 : pl->band, at = b0 * pl->ow, n = rows * pl->ow;
        band_acc(bk, pl, NULL, x, x_cs, x_xor, x_zp, nch, w, b0, rows, acc);
        for (int l = 0; l < nch; l++) {
            const float *a = acc + l * pl->acc_pitch;
            if (!rq) { /* ConvInteger: the exact integers */
                int32_t *yl = (int32_t *)y + l * y_cs + at;
                for (int64_t i = 0; i < n; i++) yl[i] = (int32_t)a[i];
                continue;
            }
            const int64_t m = m0 + l;
            k->requant(a, pl->acc_pitch, 1, n, rq->bias ? rq->bias[m] : 0, rq->scale[rq->scale_per_row ? m : 0],
                       lo, hi, rq->zp, (uint8_t *)y + l * y_cs + at, sums ? &sums[l] : NULL);
        }
    }
}

/* ---- the portable primitives ----------------------------------------------------------------- */

static void to_lanes_u8_ref(const uint8_t *src, int64_t cs, int nch, int64_t n, int64_t iw, uint8_t x_xor,
                            int32_t x_zp, float *dst, int64_t ld_row) {
    for (int64_t p = 0; p < n; p++) {
        float *d = dst + ((p / iw) * ld_row + p % iw) * OCT_DWB_LANES;
        for (int l = 0; l < OCT_DWB_LANES; l++)
            d[l] = l < nch ? (float)((int32_t)(uint8_t)(src[l * cs + p] ^ x_xor) - x_zp) : 0.f;
    }
}

static void to_lanes_f32_ref(const float *src, int64_t cs, int nch, int64_t n, int64_t iw, float *dst,
                             int64_t ld_row) {
    for (int64_t p = 0; p < n; p++) {
        float *d = dst + ((p / iw) * ld_row + p % iw) * OCT_DWB_LANES;
        for (int l = 0; l < OCT_DWB_LANES; l++) d[l] = l < nch ? src[l * cs + p] : 0.f;
    }
}

static void from_lanes_ref(const float *src, int64_t q, int nch, float *dst, int64_t ld_dst) {
    const int64_t qr = round_up16(q);
    for (int l = 0; l < nch; l++)
        for (int64_t i = 0; i < qr; i++) dst[l * ld_dst + i] = src[i * OCT_DWB_LANES + l];
}

static void taps_ref(const oct_dwb_plan *pl, const float *in, const float *w, int64_t rows, float *out) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < pl->ow; c++) {
            float acc[OCT_DWB_LANES] = {0};
            for (int i = 0; i < pl->kh; i++)
                for (int j = 0; j < pl->kw; j++) {
                    const float *s = in + ((r * pl->sh + i) * pl->wp + c * pl->sw + j) * OCT_DWB_LANES;
                    const float *wt = w + (i * pl->kw + j) * OCT_DWB_LANES;
                    for (int l = 0; l < OCT_DWB_LANES; l++) acc[l] += s[l] * wt[l];
                }
            memcpy(out + (r * pl->ow + c) * OCT_DWB_LANES, acc, sizeof acc);
        }
}

const oct_dwb_kernels oct_ref_dwb_kernels = {"ref", 32 * 32, to_lanes_u8_ref, to_lanes_f32_ref, from_lanes_ref, taps_ref};
