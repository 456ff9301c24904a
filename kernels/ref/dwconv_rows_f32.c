/* The fp32 row-path band driver shared by every ISA (the method is in dwconv_rows_f32.h): plan
   geometry and the band loop; plus the portable C padded copy and row loop (the ref twins of the
   per-ISA ones). */
#include <string.h>

#include "dwconv_kernels.h"
#include "dwconv_rows_f32.h"

/* Floats of scratch rows a band may span (24 KB): the band's input stays in L1 while each of its
   rows is read kh times, beside the output rows being written. */
enum { BAND_FLOATS = 6 * 1024 };
/* Widest scratch row taken, and the most floats a band's kh rows may take, so that the scratch
   stays bounded whatever the pads (the other paths take the rest). */
enum { MAX_PITCH = 16 * 1024, MAX_WINDOW_FLOATS = 1 << 18 };

static int64_t round_up16(int64_t v) { return (v + 15) / 16 * 16; }

int oct_dwf_plan_init(const oct_conv_geom *g, int layout, oct_dwf_plan *pl) {
    oct_dw_plan base; /* the same window coverage as the band path */
    memset(pl, 0, sizeof *pl);
    if (!oct_dw_plan_init(g, &base)) return 0;
    pl->ih = base.ih, pl->iw = base.iw, pl->oh = base.oh, pl->ow = base.ow;
    pl->kh = base.kh, pl->kw = base.kw, pl->sh = base.sh, pl->sw = base.sw, pl->ph = base.ph, pl->pw = base.pw;
    if (pl->sw > 2 || pl->iw > MAX_PITCH || pl->pw > MAX_PITCH || pl->ow > MAX_PITCH) return 0;
    const int64_t vecs = (pl->ow + OCT_DWF_COLS - 1) / OCT_DWF_COLS;
    pl->layout = pl->sw == 2 && layout == OCT_DWF_PHASES ? OCT_DWF_PHASES : OCT_DWF_PLAIN;
    if (pl->layout == OCT_DWF_PHASES) {
        /* a phase holds the 16-float loads of the last output vector at every tap (and the one
           after, which the loops load as the second of a pair), and a row every padded column */
        int64_t half = (vecs - 1) * OCT_DWF_COLS + (pl->kw - 1) / pl->sw + OCT_DWF_COLS;
        const int64_t cover = (pl->pw + pl->iw + pl->sw - 1) / pl->sw;
        if (half < cover) half = cover;
        pl->half = round_up16(half);
        pl->pitch = pl->sw * pl->half;
    } else {
        /* a row holds the three aligned 16-float loads from the last vector's first window (stride
           2; stride 1: two, plus the taps' reach), and every padded column */
        int64_t pitch = pl->sw == 2 ? (vecs - 1) * 2 * OCT_DWF_COLS + 3 * OCT_DWF_COLS
                                    : (vecs - 1) * OCT_DWF_COLS + pl->kw - 1 + OCT_DWF_COLS;
        if (pitch < pl->pw + pl->iw) pitch = pl->pw + pl->iw;
        pl->pitch = pl->half = round_up16(pitch);
    }
    if (pl->pitch > MAX_PITCH || pl->pitch * pl->kh > MAX_WINDOW_FLOATS) return 0;
    int64_t band = (BAND_FLOATS / pl->pitch - pl->kh) / pl->sh + 1;
    if (band < 1) band = 1;
    if (band > pl->oh) band = pl->oh;
    pl->band = band;
    pl->in_rows = (band - 1) * pl->sh + pl->kh;
    return 1;
}

size_t oct_dwf_scratch_bytes(const oct_dwf_plan *pl) { return (size_t)(pl->in_rows * pl->pitch) * sizeof(float); }

void oct_dwf_conv_f32(const oct_dwf_kernels *rk, const oct_dwf_plan *pl, const float *x, const float *w, float bias,
                      const float *res, const oct_act *act, float *y, int64_t r0, int64_t r1, double *sum,
                      void *scratch) {
    for (int64_t b0 = r0; b0 < r1; b0 += pl->band) {
        const int64_t rows = r1 - b0 < pl->band ? r1 - b0 : pl->band, at = b0 * pl->ow;
        rk->fill(pl, x, b0 * pl->sh, (rows - 1) * pl->sh + pl->kh, scratch);
        rk->rows(pl, scratch, rows, w, bias, res ? res + at : NULL, act, y + at, sum);
    }
}

size_t oct_dwf_dense_scratch_bytes(const oct_dwf_plan *pl, int channels) {
    return oct_dwf_scratch_bytes(pl) * (size_t)channels;
}

void oct_dwf_dense_f32(const oct_dwf_kernels *rk, const oct_dwf_plan *pl, const float *x, int64_t x_cs, int channels,
                       const float *w, int64_t m, const float *bias, const float *res, const oct_act *act, float *y,
                       int64_t y_cs, int64_t r0, int64_t r1, void *scratch) {
    const int64_t kvol = (int64_t)pl->kh * pl->kw, cs = pl->in_rows * pl->pitch, per = channels * kvol;
    /* a last group of fewer than OCT_DWF_DENSE_M channels runs on zero-padded copies */
    float wpad[OCT_DWF_DENSE_M * OCT_DWF_DENSE_MAX_C * OCT_DW_MAX_TAPS], bpad[OCT_DWF_DENSE_M];
    for (int64_t b0 = r0; b0 < r1; b0 += pl->band) {
        const int64_t rows = r1 - b0 < pl->band ? r1 - b0 : pl->band, at = b0 * pl->ow;
        for (int c = 0; c < channels; c++)
            rk->fill(pl, x + c * x_cs, b0 * pl->sh, (rows - 1) * pl->sh + pl->kh, (float *)scratch + c * cs);
        for (int64_t l0 = 0; l0 < m; l0 += OCT_DWF_DENSE_M) {
            const int nm = m - l0 < OCT_DWF_DENSE_M ? (int)(m - l0) : OCT_DWF_DENSE_M;
            const float *wl = w + l0 * per, *bl = bias ? bias + l0 : NULL;
            if (nm < OCT_DWF_DENSE_M) {
                for (int l = 0; l < OCT_DWF_DENSE_M; l++)
                    for (int64_t i = 0; i < per; i++) wpad[l * per + i] = l < nm ? wl[l * per + i] : 0.f;
                wl = wpad;
            }
            if (nm < OCT_DWF_DENSE_M || !bias) {
                for (int l = 0; l < OCT_DWF_DENSE_M; l++) bpad[l] = l < nm && bias ? bias[l0 + l] : 0.f;
                bl = bpad;
            }
            rk->dense_rows(pl, scratch, cs, channels, rows, wl, bl, nm, res ? res + l0 * y_cs + at : NULL, act,
                           y + l0 * y_cs + at, y_cs);
        }
    }
}

/* ---- the portable primitives ----------------------------------------------------------------- */

static void fill_ref(const oct_dwf_plan *pl, const float *x, int64_t first, int64_t n, float *dst) {
    for (int64_t r = 0; r < n; r++, dst += pl->pitch) {
        memset(dst, 0, (size_t)pl->pitch * sizeof(float));
        const int64_t ir = first + r - pl->ph;
        if (ir < 0 || ir >= pl->ih) continue;
        for (int64_t ic = 0; ic < pl->iw; ic++) {
            const int64_t q = ic + pl->pw;
            dst[pl->layout == OCT_DWF_PHASES ? (q % pl->sw) * pl->half + q / pl->sw : q] = x[ir * pl->iw + ic];
        }
    }
}

static void rows_ref(const oct_dwf_plan *pl, const float *in, int64_t rows, const float *w, float bias,
                     const float *res, const oct_act *act, float *y, double *sum) {
    double s = 0.0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < pl->ow; c++) {
            float acc = bias;
            for (int i = 0; i < pl->kh; i++)
                for (int j = 0; j < pl->kw; j++) acc += in[oct_dwf_at(pl, r, i, j, c)] * w[i * pl->kw + j];
            if (res) acc += res[r * pl->ow + c];
            const float v = oct_act_apply(act, acc);
            y[r * pl->ow + c] = v;
            s += v;
        }
    if (sum) *sum += s;
}

static void dense_rows_ref(const oct_dwf_plan *pl, const float *in, int64_t cs, int channels, int64_t rows,
                           const float *w, const float *bias, int nm, const float *res, const oct_act *act, float *y,
                           int64_t y_cs) {
    const int64_t kvol = (int64_t)pl->kh * pl->kw;
    for (int l = 0; l < nm; l++)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t col = 0; col < pl->ow; col++) {
                float acc = bias[l];
                for (int c = 0; c < channels; c++) {
                    const float *wc = w + (l * channels + c) * kvol;
                    for (int i = 0; i < pl->kh; i++)
                        for (int j = 0; j < pl->kw; j++) acc += in[c * cs + oct_dwf_at(pl, r, i, j, col)] * wc[i * pl->kw + j];
                }
                const int64_t o = l * y_cs + r * pl->ow + col;
                if (res) acc += res[o];
                y[o] = oct_act_apply(act, acc);
            }
}

const oct_dwf_kernels oct_ref_dwf_kernels = {"ref", fill_ref, rows_ref, dense_rows_ref};
