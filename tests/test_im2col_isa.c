/* The fp32 im2col panel unfold of every ISA level the CPU runs (oct_im2col_f32_panel, selected
   through OCTET_ISA + oct_kernels_reset) against oct_ref_im2col_f32_panel, float for float, and the
   AVX-512 twin called directly: stride-2 rows of every width around the vector size (the masked
   tails stop at the run's last input float: the input ends exactly at a page-guarded boundary
   here, so a read past it would fault), pads on either side wider than the kernel reach, dilated
   windows, 1-D / 2-D / 3-D geometries, several channels, tiles that start mid-row and span rows
   and depth slices, panel strips of 48 (AVX-512), 16 and 8 columns, and the shapes the twin leaves
   to ref (stride 1 and 3, rows shorter than 24). Cells past the tile's last column must be zero,
   and no byte past the panel may change. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/im2col_isa.h"
#include "kernels/kernels.h"
#include "test_session.h"
#include "test_util.h"

static uint32_t rng = 4242u;
static uint32_t rnext(void) {
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}
static int rin(int lo, int hi) { return lo + (int)(rnext() % (uint32_t)(hi - lo + 1)); }

/* n floats that end exactly where an inaccessible page begins. */
typedef struct {
    void *map;
    size_t map_bytes;
    float *x;
} guarded;

static guarded guarded_floats(size_t n) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), bytes = n * sizeof(float);
    const size_t data_pages = (bytes + page - 1) / page;
    guarded g;
    g.map_bytes = (data_pages + 1) * page;
    g.map = mmap(NULL, g.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(g.map, MAP_FAILED);
    ck_assert_int_eq(mprotect((char *)g.map + data_pages * page, page, PROT_NONE), 0);
    g.x = (float *)((char *)g.map + data_pages * page - bytes);
    return g;
}

typedef struct {
    int64_t in[3], k[3], stride[3], dil[3], pad[3], pad_end[3];
    int64_t channels, p0, np, nr;
} im2col_case;

static void fill_geom(const im2col_case *c, oct_conv_geom *g) {
    for (int i = 0; i < 3; i++) {
        g->in[i] = c->in[i];
        g->k[i] = c->k[i];
        g->stride[i] = c->stride[i];
        g->dil[i] = c->dil[i];
        g->pad[i] = c->pad[i];
        const int64_t ek = (c->k[i] - 1) * c->dil[i] + 1;
        g->out[i] = (c->in[i] + c->pad[i] + c->pad_end[i] - ek) / c->stride[i] + 1;
    }
}

typedef void (*panel_fn)(const oct_conv_geom *, const float *, int64_t, int64_t, int64_t, int64_t, float *);

static void compare(const char *what, panel_fn fn, const im2col_case *c) {
    oct_conv_geom g;
    fill_geom(c, &g);
    const int64_t in_vol = oct_geom_in_vol(&g), K = c->channels * oct_geom_k_vol(&g);
    guarded in = guarded_floats((size_t)(in_vol * c->channels));
    for (int64_t i = 0; i < in_vol * c->channels; i++) in.x[i] = (float)rin(-1000, 1000) * 0.25f + 0.125f;
    const int64_t strips = (c->np + c->nr - 1) / c->nr, floats = strips * c->nr * K + 32;
    float *ref = malloc(sizeof(float) * (size_t)floats), *got = malloc(sizeof(float) * (size_t)floats);
    ck_assert_ptr_nonnull(ref);
    ck_assert_ptr_nonnull(got);
    for (int64_t i = 0; i < floats; i++) ref[i] = got[i] = -7.f; /* stale values must be overwritten */
    oct_ref_im2col_f32_panel(&g, in.x, c->channels, c->p0, c->np, c->nr, ref);
    fn(&g, in.x, c->channels, c->p0, c->np, c->nr, got);
    for (int64_t i = 0; i < floats; i++)
        ck_assert_msg(memcmp(&ref[i], &got[i], sizeof(float)) == 0,
                      "%s: in %lldx%lldx%lld k %lldx%lldx%lld stride %lld,%lld,%lld dil %lld,%lld,%lld pad %lld,%lld,%lld "
                      "channels %lld p0 %lld np %lld nr %lld: float %lld is %g, ref %g",
                      what, (long long)c->in[0], (long long)c->in[1], (long long)c->in[2], (long long)c->k[0],
                      (long long)c->k[1], (long long)c->k[2], (long long)c->stride[0], (long long)c->stride[1],
                      (long long)c->stride[2], (long long)c->dil[0], (long long)c->dil[1], (long long)c->dil[2],
                      (long long)c->pad[0], (long long)c->pad[1], (long long)c->pad[2], (long long)c->channels,
                      (long long)c->p0, (long long)c->np, (long long)c->nr, (long long)i, (double)got[i],
                      (double)ref[i]);
    free(ref);
    free(got);
    munmap(in.map, in.map_bytes);
}

/* A random geometry: mostly 2-D stride-2 rows wide enough for the twin, some it leaves to ref. */
static im2col_case random_case(void) {
    im2col_case c;
    const int three_d = rnext() % 6 == 0, one_d = !three_d && rnext() % 6 == 0;
    for (int i = 0; i < 3; i++) {
        const int used = i == 2 || (i == 1 && !one_d) || (i == 0 && three_d);
        c.k[i] = used ? rin(1, i == 2 ? 7 : 3) : 1;
        c.stride[i] = used ? (i == 2 ? (rnext() % 5 ? 2 : rin(1, 3)) : rin(1, 2)) : 1;
        c.dil[i] = used && rnext() % 5 == 0 ? 2 : 1;
        c.pad[i] = used ? rin(0, 4) : 0;
        c.pad_end[i] = used ? rin(0, 4) : 0;
        const int64_t ek = (c.k[i] - 1) * c.dil[i] + 1;
        const int64_t lo = ek > c.pad[i] + c.pad_end[i] ? ek - c.pad[i] - c.pad_end[i] : 1;
        c.in[i] = used ? lo + rin(0, i == 2 ? 140 : (three_d ? 5 : 12)) : 1;
    }
    c.channels = rin(1, 4);
    static const int64_t nrs[] = {48, 48, 16, 8};
    c.nr = nrs[rnext() % 4];
    oct_conv_geom g;
    fill_geom(&c, &g);
    const int64_t out = oct_geom_out_vol(&g);
    c.p0 = rnext() % 3 ? rin(0, (int)(out - 1)) : 0;
    c.np = rin(1, (int)(out - c.p0 < 700 ? out - c.p0 : 700));
    return c;
}

static void suite_for(const char *what, panel_fn fn) {
    /* the stems: 3 -> K 27 at 224 (pad 1) and 300 (pad 0 / 1 asymmetric), ResNet's 7x7 pad 3 */
    static const im2col_case fixed[] = {
        {{1, 224, 224}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, 3, 0, 2048, 48},
        {{1, 224, 224}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, 3, 10544, 2000, 48},
        {{1, 300, 300}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, {0, 1, 1}, 3, 149 * 150 - 700, 700, 48},
        {{1, 64, 64}, {1, 7, 7}, {1, 2, 2}, {1, 1, 1}, {0, 3, 3}, {0, 3, 3}, 3, 37, 500, 48},
        {{1, 9, 61}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, 2, 0, 5 * 31, 16},
        {{1, 5, 67}, {1, 1, 5}, {1, 1, 2}, {1, 1, 2}, {0, 0, 2}, {0, 0, 3}, 1, 3, 100, 48},
        {{1, 3, 33}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, 1, 0, 16, 48},
        {{1, 8, 60}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, 2, 5, 200, 48}, /* stride 1: ref */
        {{1, 14, 14}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, 4, 0, 49, 8},  /* short rows: ref */
        {{4, 12, 70}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 2, 11, 300, 48},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) compare(what, fn, &fixed[i]);
    for (int i = 0; i < 300; i++) {
        const im2col_case c = random_case();
        compare(what, fn, &c);
    }
}

START_TEST(levels) {
    for (int isa = 0; isa < OCT_ISA_COUNT; isa++) {
        if (!oct_isa_supported((oct_isa)isa)) continue;
        test_use_isa((oct_isa)isa);
        ck_assert_int_eq(oct_kernels()->isa, isa);
        suite_for(oct_isa_name((oct_isa)isa), oct_im2col_f32_panel);
    }
    test_default_isa();
}
END_TEST

START_TEST(avx512_direct) {
#if defined(__x86_64__)
    if (oct_isa_supported(OCT_ISA_AVX512)) suite_for("avx512 twin", oct_avx512_im2col_f32_panel);
#endif
}
END_TEST

int main(void) {
    Suite *s = suite_create("im2col_isa");
    TCase *tc = tcase_create("panels");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, levels);
    tcase_add_test(tc, avx512_direct);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
