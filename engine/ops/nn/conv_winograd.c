/* Conv's Winograd strategy for 2-D 3x3 stride-1 convolutions: F(4x4, 3x3) (kernels/ref/winograd.h).
   Per work item (an image's block of tiles, and a block of output channels):
     1. B^T d B of the block's tiles for every input channel, written by the input transform straight
        into the packed operand layout of the GEMM micro-tiles (V, in the thread's slice);
     2. 36 GEMMs, one per transform position, of U[pos] (M x C) and V[pos] (C x nt), U = G g G^T
        transformed and packed for the arch's micro-tile once, at plan time; the micro-tiles are
        called directly, so nothing is packed or copied at run time;
     3. A^T Y A with the epilogue (bias, residual, activation) written straight into the NCHW output.
   That takes 36 instead of 144 multiplications per tile and channel pair, at the price of the
   transforms and of U being 4x larger than the weights.

   Two orientations of the GEMMs. On planes up to 64x64 (TRANSPOSED_MAX_TILES) tiles are the
   micro-tile's broadcast rows (strips of mr) and output channels its vector columns (U^T packed as
   B): the channel counts of real networks fill every vector, each U strip is swept by all the
   block's tiles while in cache, and the output transform runs vectorised across channels from the
   tile-major results. On larger planes tiles are the vector columns and U rows the broadcast side,
   as the row-wise output transform there fills its vectors with the tiles of one tile row.
   Where few tiles share each U the GEMMs stream U from memory, so the plan picks this strategy only
   where it measured faster (conv_winograd_fits). OCTET_WINOGRAD=0 turns it off, =1 forces it on
   every layer it can run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "conv.h"
#include "ref/winograd.h"
#include "steal_range.h"
#include "team.h"

/* Floats of V + Y one thread works on: their slices of one position (and U's) stay in L2 during
   each GEMM; the whole block only streams through L2 between the three phases. KC bounds the
   reduction of one micro-tile call, so an A strip (mr x KC) stays in L1. */
enum { SLICE_BUDGET_FLOATS = 1 << 19, MIN_BLOCK = 16, MAX_BLOCK = 256, KC = 512 };

/* Tiles per image up to which the GEMMs run transposed (tiles on the mr side). Measured at 1 thread,
   C = M, transposed vs not: AVX-512 14x14 0.47 vs 0.55 ms, 28x28 0.41 vs 0.56, 56x56 0.45 vs 0.47,
   112x112 0.63 vs 0.62; AVX2 alike (56x56 even, 112x112 3% slower transposed). */
enum { TRANSPOSED_MAX_TILES = 256 };

/* Floats of U up to which the transposed GEMMs split tiles between threads (see choose_blocks). */
enum { SHARED_U_MAX_FLOATS = 1 << 20 };

/* The plan: geometry, blocking, then the packed transformed weights in the same allocation
   (64-byte aligned), so conv_free's one free() releases everything. */
typedef struct {
    oct_wino_geom geom;
    const oct_sgemm_arch *arch; /* the micro-tile U is packed for */
    int transposed;             /* tiles on the mr side, U^T packed as B strips of `cols` channels */
    int64_t tiles;              /* tiles per image */
    int64_t block;              /* tiles per work item */
    int64_t mblock;             /* output channels per work item: whole strips of packed U */
    int64_t cols;               /* the micro-tiles' column strip width (<= nr), see column_width */
    int64_t group;              /* V's strip width: cols, or mr when transposed */
    int64_t v_pos, u_pos, y_pos; /* floats per transform position of V, packed U, Y */
    int64_t v_floats;           /* per-thread V slice, rounded to 16 floats; Y follows it */
    float *u;
} conv_wino;

static size_t header_bytes(void) { return (sizeof(conv_wino) + 63) / 64 * 64; }

static int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int conv_winograd_fits(oct_graph *g, const oct_node *n, const conv_params *p) {
    const char *env = getenv("OCTET_WINOGRAD");
    if (env && strcmp(env, "0") == 0) return 0;
    const oct_conv_geom *ge = &p->geom;
    if (p->group != 1 || ge->in[0] != 1 || ge->k[0] != 1 || ge->k[1] != 3 || ge->k[2] != 3) return 0;
    for (int i = 1; i < 3; i++)
        if (ge->stride[i] != 1 || ge->dil[i] != 1) return 0;
    const oct_value *w = oct_in_val(g, n, 1);
    if (w->kind != OCT_VAL_CONST || !w->data) return 0; /* U is computed once, at plan time */
    if (env && strcmp(env, "1") == 0) return 1;
    /* Measured per layer against im2col, 1 thread, C = M: AVX-512 2.7x (256 ch, 14x14 = 16 tiles) to
       3.5x (128 ch, 28x28) faster, AVX2 3x to 4.3x; 512 ch at 7x7 (4 tiles) still 2x slower (2.5 vs
       1.24 ms), as U (36 x 512 x 512 floats, 38 MB) streams from memory for 4 tiles. */
    const int64_t tiles = ((ge->out[1] + 3) / 4) * ((ge->out[2] + 3) / 4); /* per image: blocks stay in one */
    return p->C >= 16 && p->M >= 16 && tiles >= 16;
}

/* The width of the column (B) strips the micro-tiles are called on. The AVX-512 tile (8 x 48, three
   vectors) is as fast per FMA on two vectors (still FMA-bound) but about 3x slower on one, so strips
   of 32 - which divide the power-of-two channel and tile counts of real networks - beat 48-wide
   ones with their 16-wide tails (measured: the tails took a third of the GEMM time). Narrower
   strips need a tile that honours cols on its B loads; other archs use nr. */
static int64_t column_width(const oct_sgemm_arch *arch) {
#if defined(__x86_64__)
    if (arch == &oct_avx512_sgemm_arch && arch->reads_b_in_place) return 32;
#endif
    return arch->nr;
}

/* U^T (C x M) as B strips of w output channels: strip s at s * w * C, element [c * w + j]. */
static void pack_u_transposed(const float *u, int64_t M, int64_t C, int64_t w, float *dst) {
    for (int64_t m0 = 0; m0 < M; m0 += w, dst += w * C)
        for (int64_t c = 0; c < C; c++)
            for (int64_t j = 0; j < w; j++) dst[c * w + j] = m0 + j < M ? u[(m0 + j) * C + c] : 0.f;
}

/* U = G g G^T for every position, packed per position for the arch: as A (strips of mr output
   channels) or, transposed, as B (strips of `cols` output channels); both cover all C. */
static int pack_weights(conv_wino *wp, const float *w, int64_t M, int64_t C, octet_error *err) {
    const size_t plain_bytes = nn_float_bytes(OCT_WINO_POS * M * C); /* M, C checked by the caller */
    float *plain = plain_bytes ? oct_big_alloc(plain_bytes) : NULL;
    if (!plain) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory for the Winograd weights");
    oct_ref_wino_weights(w, M, C, plain);
    for (int pos = 0; pos < OCT_WINO_POS; pos++) {
        const float *src = plain + pos * M * C;
        float *dst = wp->u + pos * wp->u_pos;
        if (wp->transposed)
            pack_u_transposed(src, M, C, wp->cols, dst);
        else
            oct_sgemm_pack_a(wp->arch, (int)M, (int)C, src, (int)C, dst);
    }
    free(plain);
    return 0;
}

/* A position stride in floats, padded to an odd number of 64-byte lines: the transforms touch all 36
   positions at once, and with a stride of a multiple of 4 KB (common: 48 x 64 channels x 5 strips)
   all 36 streams fall into one L1 set and evict each other (measured 2.5x slower input transform). */
static int64_t odd_lines(int64_t floats) {
    const int64_t lines = (floats + 15) / 16;
    return (lines | 1) * 16;
}

/* Tiles per work item and output channels per work item, so that every thread has work. */
static void choose_blocks(conv_wino *wp, const conv_params *p) {
    const int64_t M = p->M, C = p->C;
    /* Transposed, tile blocks need only be whole strips of mr rows; otherwise whole vectors. Work
       items there are equal, so one per thread balances; else two per thread for the uneven ones. */
    const int64_t unit = wp->transposed ? wp->arch->mr : MIN_BLOCK;
    const int64_t want = (wp->transposed ? 1 : 2) * (int64_t)p->threads;
    const int64_t mstep = wp->transposed ? wp->cols : wp->arch->mr;
    int64_t block = SLICE_BUDGET_FLOATS / (OCT_WINO_POS * (C + M));
    block = block / unit * unit;
    if (block < unit) block = unit;
    if (block > MAX_BLOCK) block = MAX_BLOCK;
    /* Blocks of equal size: a short last block would stream all of U again for a few tiles. */
    const int64_t nblk = (wp->tiles + block - 1) / block;
    block = round_up((wp->tiles + nblk - 1) / nblk, unit);
    if (block > wp->tiles) block = wp->tiles;
    int64_t items = p->N * ((wp->tiles + block - 1) / block);
    /* Splitting tiles re-reads U for every extra block; with few tiles (transposed) U dominates, so
       only output channels are split there, unless U is small enough for every thread to read it
       (ResNet's 128 channels at 28x28: 2.4 MB): a channel split has every thread transform all the
       input, half of it written by the other core (measured at 2 threads: 0.51-0.63 -> 0.41-0.50 ms
       per layer; 256 channels at 14x14, U 9.4 MB, gained nothing). Otherwise tiles down to
       MIN_BLOCK first. */
    const int share_u = wp->transposed && p->threads > 1 && items < want &&
                        OCT_WINO_POS * M * C <= SHARED_U_MAX_FLOATS;
    if (((!wp->transposed && items < want) || share_u) && block > (share_u ? unit : MIN_BLOCK)) {
        const int64_t per_image = (want + p->N - 1) / p->N;
        int64_t b2 = round_up((wp->tiles + per_image - 1) / per_image, share_u ? unit : MIN_BLOCK);
        if (b2 < block) block = b2 < unit ? unit : b2;
        if (block > wp->tiles) block = wp->tiles;
        items = p->N * ((wp->tiles + block - 1) / block);
    }
    wp->block = block;
    wp->mblock = round_up(M, mstep);
    if (items < want && M > mstep) {
        const int64_t split = (want + items - 1) / items;
        int64_t mb = round_up((M + split - 1) / split, mstep);
        const int64_t floor_mb = wp->transposed ? mstep : round_up(32, mstep);
        wp->mblock = mb < floor_mb ? floor_mb : mb;
    }
}

int conv_plan_winograd(oct_graph *g, oct_node *n, conv_params *p, octet_error *err) {
    if (g->shapes_only) return 0; /* no weight transform for an infer whose params are discarded */
    const int64_t M = p->M, C = p->C;
    const oct_conv_geom *ge = &p->geom;
    const oct_sgemm_arch *arch = p->packed_arch;
    const int64_t tiles_x = (ge->out[2] + 3) / 4, tiles = tiles_x * ((ge->out[1] + 3) / 4);
    const int transposed = tiles <= TRANSPOSED_MAX_TILES;
    const int64_t cols = column_width(arch);
    /* M and C fit an int (conv.c checks them), so the padded strips below cannot overflow int64. */
    const int64_t strip = transposed ? cols : arch->mr, u_pos = round_up(M, strip) * C;
    if (u_pos > INT64_MAX / OCT_WINO_POS || (uint64_t)(u_pos * OCT_WINO_POS) > (SIZE_MAX - 128) / sizeof(float) -
                                                                                 header_bytes() / sizeof(float))
        return oct_fail(err, OCTET_ERR_NOMEM, "Winograd weights of %lld x %lld channels overflow", (long long)M,
                        (long long)C);
    /* whole cache lines; 4 MB and more in huge pages (bigmem.h: plan-time page faults are VM exits) */
    const size_t total = (header_bytes() + (size_t)(u_pos * OCT_WINO_POS) * sizeof(float) + 63) / 64 * 64;
    conv_wino *wp = oct_big_alloc(total);
    if (!wp) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory for the Winograd weights");
    memset(wp, 0, sizeof *wp);
    wp->u = (float *)((char *)wp + header_bytes());
    wp->arch = arch;
    wp->transposed = transposed;
    wp->u_pos = u_pos;
    wp->geom = (oct_wino_geom){.in_h = ge->in[1], .in_w = ge->in[2], .out_h = ge->out[1], .out_w = ge->out[2],
                               .pad_t = ge->pad[1], .pad_l = ge->pad[2], .tiles_x = tiles_x};
    wp->tiles = tiles;
    wp->cols = cols;
    wp->group = transposed ? arch->mr : cols;
    p->wino = wp;
    if (pack_weights(wp, oct_in_val(g, n, 1)->data, M, C, err)) return -1;
    choose_blocks(wp, p);
    const int64_t items = p->N * ((tiles + wp->block - 1) / wp->block) * ((M + wp->mblock - 1) / wp->mblock);
    if (items > NN_STEAL_MAX_ITEMS)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%lld Winograd work items (images x tile blocks x channel blocks) are too many",
                        (long long)items);
    wp->v_pos = odd_lines(round_up(wp->block, wp->group) * C);
    wp->y_pos = odd_lines(wp->mblock * wp->block);
    const size_t v_bytes = nn_float_bytes(OCT_WINO_POS * wp->v_pos);
    const size_t y_bytes = nn_float_bytes(OCT_WINO_POS * wp->y_pos);
    if (!v_bytes || !y_bytes || v_bytes > SIZE_MAX - y_bytes)
        return oct_fail(err, OCTET_ERR_NOMEM, "Winograd workspace size overflows");
    wp->v_floats = (int64_t)(v_bytes / sizeof(float));
    p->slice_bytes = v_bytes + y_bytes;
    if (p->slice_bytes > SIZE_MAX / (size_t)p->threads)
        return oct_fail(err, OCTET_ERR_NOMEM, "Winograd workspace size overflows");
    n->workspace_bytes = p->slice_bytes * (size_t)p->threads;
    return 0;
}

/* y (mc x nt, ld nt) = U rows [m0, m0 + mc) x V for one position: U strips of mr rows broadcast
   against V strips of nr tiles. u points at the channel block's first strip, v at the position's V. */
static void gemm_tiles_as_columns(const oct_sgemm_arch *arch, int64_t nr, const float *u, const float *v,
                                  int64_t mc, int64_t nt, int64_t C, float *y) {
    const int64_t mr = arch->mr;
    for (int64_t p0 = 0; p0 < C; p0 += KC) {
        const int kc = (int)min64(KC, C - p0);
        for (int64_t i = 0; i < mc; i += mr)
            for (int64_t j = 0; j < nt; j += nr)
                arch->tile((int)min64(mr, mc - i), (int)min64(nr, nt - j), kc, u + i * C + p0 * mr,
                           v + j * C + p0 * nr, (size_t)nr, y + i * nt + j, (size_t)nt, p0 > 0, NULL);
    }
}

/* The transposed GEMM: y (nt x mc, ld mc) = V^T x U^T for one position, V strips of mr tiles
   broadcast against U^T strips of nr channels; each U^T strip is swept by all tiles while it is in
   cache. */
static void gemm_tiles_as_rows(const oct_sgemm_arch *arch, int64_t nr, const float *u, const float *v,
                               int64_t mc, int64_t nt, int64_t C, float *y) {
    const int64_t mr = arch->mr;
    const oct_sgemm_tile_fn tile = arch->tile_stream ? arch->tile_stream : arch->tile; /* U from memory */
    for (int64_t p0 = 0; p0 < C; p0 += KC) {
        const int kc = (int)min64(KC, C - p0);
        for (int64_t j = 0; j < mc; j += nr)
            for (int64_t i = 0; i < nt; i += mr)
                tile((int)min64(mr, nt - i), (int)min64(nr, mc - j), kc, v + i * C + p0 * mr, u + j * C + p0 * nr,
                     (size_t)nr, y + i * mc + j, (size_t)mc, p0 > 0, NULL);
    }
}

typedef struct {
    const oct_run_ctx *ctx;
    const conv_params *p;
    const float *x, *bias, *res;
    float *y;
    oct_act act;
    nn_steal *work;
} wino_job;

/* One thread's part: the (image, tile block, channel block) items it claims, channel blocks
   innermost, so a thread often finds its V already transformed. */
static void wino_part(void *arg, int tid, int nthreads) {
    (void)nthreads;
    const wino_job *j = arg;
    const conv_params *p = j->p;
    const conv_wino *wp = p->wino;
    const int64_t M = p->M, C = p->C;
    const int64_t nblk = (wp->tiles + wp->block - 1) / wp->block;
    const int64_t nmb = (M + wp->mblock - 1) / wp->mblock;
    const oct_wino_kernel_set *ks = oct_wino_kernels();
    const oct_sgemm_arch *arch = wp->arch;
    const int64_t in_plane = p->in_vol, out_plane = p->P;
    float *v = (float *)((char *)j->ctx->workspace + (size_t)tid * p->slice_bytes);
    float *yb = v + wp->v_floats;
    int64_t have = -1; /* the tile block whose transform V holds: output-channel blocks share it */
    for (int64_t it; (it = nn_steal_next(j->work, tid)) >= 0;) {
        const int64_t mbi = it % nmb, tb = it / nmb, blk = tb % nblk, b = tb / nblk;
        const int64_t t0 = blk * wp->block, nt = min64(wp->tiles - t0, wp->block);
        const int64_t m0 = mbi * wp->mblock, mc = min64(M - m0, wp->mblock);
        if (have != tb) {
            /* Lanes of V's last strip past nt keep stale floats: they only feed accumulators
               that are never stored. */
            ks->input(&wp->geom, j->x + b * C * in_plane, C, t0, nt, v, wp->v_pos, wp->group, wp->group * C);
            have = tb;
        }
        for (int pos = 0; pos < OCT_WINO_POS; pos++) {
            const float *u = wp->u + pos * wp->u_pos + m0 * C;
            if (wp->transposed)
                gemm_tiles_as_rows(arch, wp->cols, u, v + pos * wp->v_pos, mc, nt, C, yb + pos * wp->y_pos);
            else
                gemm_tiles_as_columns(arch, wp->cols, u, v + pos * wp->v_pos, mc, nt, C, yb + pos * wp->y_pos);
        }
        const int64_t off = (b * M + m0) * out_plane;
        const oct_wino_output_fn out = wp->transposed ? ks->output_t : ks->output;
        out(&wp->geom, yb, wp->y_pos, wp->transposed ? mc : nt, mc, t0, nt, j->bias ? j->bias + m0 : NULL,
            j->res ? j->res + off : NULL, &j->act, j->y + off);
    }
}

void conv_run_winograd(const oct_run_ctx *ctx, const oct_node *n, const conv_params *p, const float *x,
                       const float *bias, const float *res, float *y) {
    const conv_wino *wp = p->wino;
    const int64_t nblk = (wp->tiles + wp->block - 1) / wp->block;
    const int64_t items = p->N * nblk * ((p->M + wp->mblock - 1) / wp->mblock);
    const int t = items > 1 ? nn_run_threads(ctx, p->threads) : 1;
    nn_steal work;
    nn_steal_init(&work, items, t); /* the plan checked the item count */
    wino_job j = {ctx, p, x, bias, res, y, nn_node_act(n), &work};
    oct_parallel(ctx, t, wino_part, &j);
}
