/* The row-path band driver shared by every ISA (the method is in dwconv_rows.h): plan geometry,
   the weight groups and the band loop; plus the portable C padded copy and row loop (the ref
   twins of the per-ISA ones). */
#include <math.h>
#include <string.h>

#include "dwconv_kernels.h"
#include "dwconv_rows.h"

/* Bytes of scratch rows a band may span: the band's input stays in L1 while each of its rows is
   read kh times (a 112-wide stride-2 plane: 113 rows of 192 bytes, two bands). */
enum { BAND_BYTES = 16 * 1024 };
/* Widest scratch row taken, so that the scratch stays bounded whatever the pads. */
enum { MAX_PITCH = 16 * 1024 };

static int64_t round_up64(int64_t v) { return (v + 63) / 64 * 64; }

int oct_dwr_plan_init(const oct_conv_geom *g, oct_dwr_plan *pl) {
    oct_dw_plan base; /* the same window coverage as the band path */
    memset(pl, 0, sizeof *pl);
    if (!oct_dw_plan_init(g, &base)) return 0;
    pl->ih = base.ih, pl->iw = base.iw, pl->oh = base.oh, pl->ow = base.ow;
    pl->kh = base.kh, pl->kw = base.kw, pl->sh = base.sh, pl->sw = base.sw, pl->ph = base.ph, pl->pw = base.pw;
    pl->groups = (pl->kw + 3) / 4;
    if (pl->sw > 4 || pl->kh * pl->groups > OCT_DWR_MAX_GROUPS) return 0;
    if (pl->iw > MAX_PITCH || pl->pw > MAX_PITCH || pl->ow > MAX_PITCH) return 0;
    /* a row holds its padded columns and the 64-byte loads of its last vector of columns */
    const int64_t vecs = (pl->ow + OCT_DWR_COLS - 1) / OCT_DWR_COLS;
    int64_t need = (vecs - 1) * OCT_DWR_COLS * pl->sw + 4 * (pl->groups - 1) + 64;
    if (need < pl->pw + pl->iw) need = pl->pw + pl->iw;
    pl->pitch = round_up64(need);
    if (pl->pitch > MAX_PITCH) return 0;
    int64_t band = (BAND_BYTES / pl->pitch - pl->kh) / pl->sh + 1;
    if (band < 1) band = 1;
    if (band > pl->oh) band = pl->oh;
    pl->band = band;
    pl->in_rows = (band - 1) * pl->sh + pl->kh;
    return 1;
}

size_t oct_dwr_scratch_bytes(const oct_dwr_plan *pl) { return (size_t)(pl->in_rows * pl->pitch); }

int oct_dwr_pack_weights(const oct_dwr_plan *pl, const int8_t *w, int32_t w_zp, int32_t *wg, int32_t *wsum) {
    int32_t s = 0;
    for (int i = 0; i < pl->kh; i++)
        for (int g = 0; g < pl->groups; g++) {
            uint32_t packed = 0;
            for (int b = 0; b < 4; b++) {
                const int j = 4 * g + b;
                const int32_t v = j < pl->kw ? (int32_t)w[i * pl->kw + j] - w_zp : 0;
                if (v < -128 || v > 127) return 0;
                s += v;
                packed |= (uint32_t)(uint8_t)(int8_t)v << (8 * b);
            }
            wg[i * pl->groups + g] = (int32_t)packed;
        }
    *wsum = s;
    return 1;
}

void oct_dwr_conv_q8(const oct_dwr_kernels *rk, const oct_dwr_plan *pl, const uint8_t *x, uint8_t x_xor, int32_t x_zp,
                     const int32_t *wg, int32_t wsum, int32_t bias, float m, float lo, float hi, int32_t zp,
                     uint8_t *y, int64_t r0, int64_t r1, int64_t *sum, void *scratch) {
    /* padded taps read x_zp: take x_zp * (sum of the weights) off once (modulo 2^32, as ref wraps) */
    const oct_dwr_chan ch = {x, x_xor, (uint8_t)x_zp, wg, (int32_t)((uint32_t)bias - (uint32_t)x_zp * (uint32_t)wsum),
                             m, lo, hi, zp};
    for (int64_t b0 = r0; b0 < r1; b0 += pl->band) {
        const int64_t rows = r1 - b0 < pl->band ? r1 - b0 : pl->band;
        rk->fill(pl, &ch, b0 * pl->sh, (rows - 1) * pl->sh + pl->kh, scratch);
        rk->rows(pl, &ch, scratch, rows, y + b0 * pl->ow, sum);
    }
}

/* ---- the portable primitives ----------------------------------------------------------------- */

static void fill_ref(const oct_dwr_plan *pl, const oct_dwr_chan *ch, int64_t first, int64_t n, uint8_t *dst) {
    for (int64_t r = 0; r < n; r++, dst += pl->pitch) {
        const int64_t ir = first + r - pl->ph;
        for (int64_t j = 0; j < pl->pitch; j++) {
            const int64_t ic = j - pl->pw;
            dst[j] = ir >= 0 && ir < pl->ih && ic >= 0 && ic < pl->iw ? ch->x[ir * pl->iw + ic] ^ ch->x_xor : ch->x_zp;
        }
    }
}

static void rows_ref(const oct_dwr_plan *pl, const oct_dwr_chan *ch, const uint8_t *in, int64_t rows, uint8_t *y,
                     int64_t *sum) {
    int64_t s = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < pl->ow; c++) {
            uint32_t acc = (uint32_t)ch->c0;
            for (int i = 0; i < pl->kh; i++)
                for (int g = 0; g < pl->groups; g++) {
                    const uint8_t *px = in + (r * pl->sh + i) * pl->pitch + c * pl->sw + 4 * g;
                    const uint32_t wd = (uint32_t)ch->w[i * pl->groups + g];
                    for (int b = 0; b < 4; b++)
                        acc += (uint32_t)((int32_t)px[b] * (int32_t)(int8_t)(uint8_t)(wd >> (8 * b)));
                }
            float v = (float)(int32_t)acc * ch->m;
            if (!(v >= ch->lo)) v = ch->lo;
            if (v > ch->hi) v = ch->hi;
            const int32_t o = (int32_t)rintf(v) + ch->zp;
            y[r * pl->ow + c] = (uint8_t)o;
            s += o;
        }
    if (sum) *sum += s;
}

const oct_dwr_kernels oct_ref_dwr_kernels = {"ref", fill_ref, rows_ref};
