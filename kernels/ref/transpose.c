/* N-D transpose by element size. The permutation is first simplified (size-1 dims dropped,
   input dims that stay adjacent in the output merged), so most real cases become either a copy
   of contiguous rows (the innermost dim is kept) or a 2-D tiled transpose repeated over outer
   dims. Tiles keep both the read and the write side inside L1. */
#include <string.h>

#include "tensor_kernels.h"

#define MAX_RANK 8
#define TILE 32

/* Drops size-1 dims and merges runs of input dims that stay consecutive in the output.
   Returns the reduced rank; rd gets the reduced input dims, rp the reduced permutation. */
static int simplify(int rank, const int64_t *dims, const int *perm, int64_t *rd, int *rp) {
    int map[MAX_RANK], kept = 0;
    int64_t kd[MAX_RANK];
    for (int i = 0; i < rank; i++) {
        map[i] = dims[i] == 1 ? -1 : kept;
        if (dims[i] != 1) kd[kept++] = dims[i];
    }
    int p[MAX_RANK], np = 0;
    for (int o = 0; o < rank; o++)
        if (map[perm[o]] >= 0) p[np++] = map[perm[o]];
    /* Groups in output order; each covers input dims [start, start+len). */
    int start[MAX_RANK], len[MAX_RANK], ng = 0;
    for (int k = 0; k < np; k++) {
        if (ng && p[k] == start[ng - 1] + len[ng - 1]) {
            len[ng - 1]++;
        } else {
            start[ng] = p[k];
            len[ng] = 1;
            ng++;
        }
    }
    for (int g = 0; g < ng; g++) {
        int pos = 0; /* the group's place in input order */
        for (int h = 0; h < ng; h++) pos += start[h] < start[g];
        int64_t size = 1;
        for (int d = start[g]; d < start[g] + len[g]; d++) size *= kd[d];
        rd[pos] = size;
        rp[g] = pos;
    }
    return ng;
}

/* One tile routine per element size: plain typed loads and stores over the tile
   [ia, ie) x [jb, je) of (input inner dim a, output inner dim b). */
#define DEFINE_TILE(NAME, T)                                                                     \
    static void NAME(const void *src, void *dst, int64_t in_base, int64_t out_base, int64_t ia,  \
                     int64_t ie, int64_t jb, int64_t je, int64_t is_b, int64_t os_a) {           \
        const T *s = (const T *)src + in_base;                                                   \
        T *d = (T *)dst + out_base;                                                              \
        for (int64_t j = jb; j < je; j++) {                                                      \
            const T *sr = s + j * is_b;                                                          \
            T *dr = d + j;                                                                       \
            for (int64_t i = ia; i < ie; i++) dr[i * os_a] = sr[i];                              \
        }                                                                                        \
    }
DEFINE_TILE(tile_1, uint8_t)
DEFINE_TILE(tile_2, uint16_t)
DEFINE_TILE(tile_4, uint32_t)
DEFINE_TILE(tile_8, uint64_t)

static void tile_any(const void *src, void *dst, size_t es, int64_t in_base, int64_t out_base,
                     int64_t ia, int64_t ie, int64_t jb, int64_t je, int64_t is_b, int64_t os_a) {
    const char *s = src;
    char *d = dst;
    for (int64_t j = jb; j < je; j++)
        for (int64_t i = ia; i < ie; i++)
            memcpy(d + (size_t)(out_base + i * os_a + j) * es, s + (size_t)(in_base + j * is_b + i) * es,
                   es);
}

void oct_ref_transpose(const void *src, void *dst, size_t esize, int rank, const int64_t *dims,
                       const int *perm, int threads) {
    int64_t total = 1;
    for (int i = 0; i < rank; i++) total *= dims[i];
    if (total == 0) return;
    int64_t rd[MAX_RANK];
    int rp[MAX_RANK];
    int r = simplify(rank, dims, perm, rd, rp);
    if (r <= 1) {
        memcpy(dst, src, (size_t)total * esize);
        return;
    }
    int64_t is[MAX_RANK], od[MAX_RANK], os[MAX_RANK];
    is[r - 1] = 1;
    for (int d = r - 2; d >= 0; d--) is[d] = is[d + 1] * rd[d + 1];
    for (int k = 0; k < r; k++) od[k] = rd[rp[k]];
    os[r - 1] = 1;
    for (int k = r - 2; k >= 0; k--) os[k] = os[k + 1] * od[k + 1];

    if (rp[r - 1] == r - 1) {
        /* The innermost dim stays innermost: copy whole rows. */
        int64_t row = rd[r - 1], rows = total / row;
        size_t row_bytes = (size_t)row * esize;
        #pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
        for (int64_t q = 0; q < rows; q++) {
            int64_t rem = q, in_off = 0;
            for (int k = r - 2; k >= 0; k--) {
                in_off += (rem % od[k]) * is[rp[k]];
                rem /= od[k];
            }
            memcpy((char *)dst + (size_t)q * row_bytes, (const char *)src + (size_t)in_off * esize,
                   row_bytes);
        }
        return;
    }

    /* a: the input's innermost dim (contiguous reads), found at output position pa;
       b: the input dim that becomes the output's innermost (contiguous writes). */
    int a = r - 1, pa = 0, b = rp[r - 1];
    while (rp[pa] != a) pa++;
    int64_t len_a = rd[a], len_b = rd[b], is_b = is[b], os_a = os[pa];
    int64_t odim[MAX_RANK], ostr_in[MAX_RANK], ostr_out[MAX_RANK];
    int m = 0;
    int64_t n_outer = 1;
    for (int k = 0; k < r - 1; k++) {
        if (k == pa) continue;
        odim[m] = od[k];
        ostr_in[m] = is[rp[k]];
        ostr_out[m] = os[k];
        n_outer *= od[k];
        m++;
    }
    /* One task per tile, so that even a single large 2-D transpose spreads over threads. */
    int64_t nbb = (len_b + TILE - 1) / TILE, nba = (len_a + TILE - 1) / TILE;
    int64_t tasks = n_outer * nbb * nba;
    #pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t rem = t / (nbb * nba), tb = t % (nbb * nba);
        int64_t jb = (tb / nba) * TILE, ia = (tb % nba) * TILE;
        int64_t je = jb + TILE < len_b ? jb + TILE : len_b;
        int64_t ie = ia + TILE < len_a ? ia + TILE : len_a;
        int64_t in_base = 0, out_base = 0;
        for (int k = m - 1; k >= 0; k--) {
            int64_t i = rem % odim[k];
            rem /= odim[k];
            in_base += i * ostr_in[k];
            out_base += i * ostr_out[k];
        }
        switch (esize) {
        case 1: tile_1(src, dst, in_base, out_base, ia, ie, jb, je, is_b, os_a); break;
        case 2: tile_2(src, dst, in_base, out_base, ia, ie, jb, je, is_b, os_a); break;
        case 4: tile_4(src, dst, in_base, out_base, ia, ie, jb, je, is_b, os_a); break;
        case 8: tile_8(src, dst, in_base, out_base, ia, ie, jb, je, is_b, os_a); break;
        default: tile_any(src, dst, esize, in_base, out_base, ia, ie, jb, je, is_b, os_a); break;
        }
    }
}
