/* AVX-512 twin of oct_ref_im2col_f32_panel for stride-2 rows (stems and downsampling layers with
   wide output rows): ref's run copy moves stride-2 rows one float at a time, which on a 3-channel
   stem costs as much as the GEMM it feeds. Here 16 outputs take two loads of 16 and one two-source
   lane permute (the even lanes); the run's ends and the padding are found as ref finds them, and
   the loads stop at the run's last input float (masked), so nothing past the row is touched.
   Every other geometry (other strides, short rows that ref gathers through its offset table) is
   ref's own code. The bytes written are ref's. */
#include <immintrin.h>
#include <string.h>

#include "../../im2col_isa.h"

/* Columns per window row this twin handles (the kw loop's per-piece table). */
enum { KW_MAX = 16 };

/* dst[t] = from[2 * t] for t in [0, n): 16 outputs per two loads and a permute of the even lanes;
   the loads stop at from[2 * (n - 1)], the run's last input float. */
static inline void copy_even(const float *from, int64_t n, float *dst) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int64_t t = 0;
    for (; t + 16 < n; t += 16) {
        const __m512 a = _mm512_loadu_ps(from + 2 * t), b = _mm512_loadu_ps(from + 2 * t + 16);
        _mm512_storeu_ps(dst + t, _mm512_permutex2var_ps(a, even, b));
    }
    if (t < n) {
        const int64_t left = n - t, readable = 2 * left - 1; /* 1..31 floats */
        const __mmask16 ma = (__mmask16)(readable >= 16 ? 0xFFFF : (1u << readable) - 1u);
        const __mmask16 mb = (__mmask16)(readable > 16 ? (1u << (readable - 16)) - 1u : 0u);
        const __m512 a = _mm512_maskz_loadu_ps(ma, from + 2 * t), b = _mm512_maskz_loadu_ps(mb, from + 2 * t + 16);
        _mm512_mask_storeu_ps(dst + t, (__mmask16)((1u << left) - 1u), _mm512_permutex2var_ps(a, even, b));
    }
}

/* The panel piece by piece: a piece is a run of output pixels inside one output row and one
   column strip of the panel. Where each window column kw enters and leaves the input row depends
   only on the piece, so it is found once per piece (as ref's copy_row finds it per row) and every
   (channel, kd, kh) row of the piece is then a branch-light vector copy. */
static void panel_s2(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0, int64_t np, int64_t nr,
                     float *bp) {
    const int64_t in_vol = oct_geom_in_vol(g), K = channels * oct_geom_k_vol(g), kw_n = g->k[2];
    int64_t ow = p0 % g->out[2], oh = p0 / g->out[2] % g->out[1], od = p0 / g->out[2] / g->out[1];
    for (int64_t q = 0; q < np;) {
        const int64_t j = q % nr;
        int64_t len = g->out[2] - ow;
        if (len > np - q) len = np - q;
        if (len > nr - j) len = nr - j;
        float *dst0 = bp + (q / nr) * nr * K + j;
        int64_t lo[KW_MAX], hi[KW_MAX], from[KW_MAX];
        for (int64_t kw = 0; kw < kw_n; kw++) {
            const int64_t off = kw * g->dil[2] - g->pad[2];
            /* output columns whose input column 2 * ow + off is inside the row: [first, last] */
            const int64_t first = off >= 0 ? 0 : (-off + 1) / 2;
            const int64_t last = g->in[2] - 1 - off < 0 ? -1 : (g->in[2] - 1 - off) / 2;
            int64_t l = first - ow, h = last + 1 - ow;
            l = l < 0 ? 0 : (l > len ? len : l);
            h = h < l ? l : (h > len ? len : h);
            lo[kw] = l;
            hi[kw] = h;
            from[kw] = (ow + l) * 2 + off;
        }
        float *dst = dst0;
        for (int64_t c = 0; c < channels; c++) {
            const float *xc = x + c * in_vol;
            for (int64_t kd = 0; kd < g->k[0]; kd++) {
                const int64_t id = od * g->stride[0] + kd * g->dil[0] - g->pad[0];
                for (int64_t kh = 0; kh < g->k[1]; kh++) {
                    const int64_t ih = oh * g->stride[1] + kh * g->dil[1] - g->pad[1];
                    if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1]) {
                        for (int64_t kw = 0; kw < kw_n; kw++, dst += nr) memset(dst, 0, (size_t)len * sizeof(float));
                        continue;
                    }
                    const float *src = xc + (id * g->in[1] + ih) * g->in[2];
                    for (int64_t kw = 0; kw < kw_n; kw++, dst += nr) {
                        for (int64_t t = 0; t < lo[kw]; t++) dst[t] = 0.f;
                        if (hi[kw] > lo[kw]) copy_even(src + from[kw], hi[kw] - lo[kw], dst + lo[kw]);
                        for (int64_t t = hi[kw]; t < len; t++) dst[t] = 0.f;
                    }
                }
            }
        }
        q += len;
        ow += len;
        if (ow == g->out[2]) {
            ow = 0;
            if (++oh == g->out[1]) {
                oh = 0;
                od++;
            }
        }
    }
    /* The last strip's columns past np are zero, as a packed panel's are. */
    const int64_t tail = np % nr;
    if (tail)
        for (int64_t row = 0; row < K; row++)
            memset(bp + (np / nr) * nr * K + row * nr + tail, 0, (size_t)(nr - tail) * sizeof(float));
}

void oct_avx512_im2col_f32_panel(const oct_conv_geom *g, const float *x, int64_t channels, int64_t p0, int64_t np,
                                 int64_t nr, float *bp) {
    /* ref gathers rows shorter than 24 through its offset table (see im2col.c); wide stride-2 rows
       are ours */
    const int64_t run = g->out[2] < nr ? g->out[2] : nr;
    if (g->stride[2] != 2 || run < 24 || g->k[2] > KW_MAX) {
        oct_ref_im2col_f32_panel(g, x, channels, p0, np, nr, bp);
        return;
    }
    panel_s2(g, x, channels, p0, np, nr, bp);
}
