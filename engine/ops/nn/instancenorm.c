/* InstanceNormalization (opset 6): each (batch, channel) plane is normalised by its own mean and
   variance, then scaled and shifted per channel; the fusion pass may add a residual and an
   activation (the epilogue, applied in the same write).

   Two passes per plane: one reads it for the shifted sum and sum of squares (in double, see
   kernels/norm_kernels.h), one writes act((x - mean) * a + b + res). Threads take whole planes when the
   planes divide evenly among them, so a plane's second pass reads it from the cache the first one
   filled; otherwise (few planes) the threads share each plane in chunks.

   A plane's sums are always taken in the same fixed chunks and added in chunk order, so the
   output does not depend on the thread count. */
#include <math.h>
#include <stdlib.h>

#include "nn_common.h"
#include "norm_kernels.h"

/* Elements per statistics chunk (256 KB of floats: a share of L2, many per 96^3 plane). */
enum { IN_CHUNK = 1 << 16 };

typedef struct {
    int64_t N, C, vol;
    int64_t chunks; /* ceil(vol / IN_CHUNK) */
    float eps;
    int threads;
} in_params;

static int in_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (oct_check_inputs(n, 3, 3, err)) return -1;
    if (n->n_out != 1) return oct_fail(err, OCTET_ERR_FORMAT, "InstanceNormalization has %d outputs", n->n_out);
    static const char *const names[3] = {"input", "scale", "B"};
    for (int i = 0; i < 3; i++)
        if (nn_require_float(g, n, i, names[i], err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (x->rank < 3)
        return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' has rank %d, needs at least 3", x->name, x->rank);
    for (int i = 1; i < 3; i++) {
        const oct_value *s = oct_in_val(g, n, i);
        if (s->rank != 1 || s->dims[0] != x->dims[1])
            return oct_fail(err, OCTET_ERR_SHAPE, "%s '%s' must have shape [%lld]", names[i], s->name,
                            (long long)x->dims[1]);
    }
    const float eps = oct_attr_float(n, "epsilon", 1e-5f);
    if (!(eps >= 0.f)) return oct_fail(err, OCTET_ERR_FORMAT, "epsilon is %g; it must be >= 0", (double)eps);
    oct_set_output(g, n, 0, OCTET_FLOAT, x->rank, x->dims);
    if (nn_check_epilogue(g, n, err)) return -1;
    in_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    p->N = x->dims[0];
    p->C = x->dims[1];
    p->vol = 1;
    for (int d = 2; d < x->rank; d++) p->vol *= x->dims[d];
    p->chunks = (p->vol + IN_CHUNK - 1) / IN_CHUNK;
    p->eps = eps;
    p->threads = nn_plan_threads();
    /* the chunk sums of one plane, when threads share it */
    n->workspace_bytes = (size_t)p->chunks * 2 * sizeof(double);
    return 0;
}

/* What a run needs of its tensors and kernels. */
typedef struct {
    const oct_norm_kernel_set *k;
    const float *x, *scale, *bias, *res;
    float *y;
    oct_act act;
    int64_t C, vol;
    double eps;
} in_job;

/* Elements [c * IN_CHUNK, ...) of a plane: the length of chunk c. */
static int64_t chunk_len(int64_t vol, int64_t c) {
    const int64_t left = vol - c * IN_CHUNK;
    return left < IN_CHUNK ? left : IN_CHUNK;
}

/* The plane's y = (x - c) * a + b from its shifted sums s and q: c is the mean rounded to float,
   and b corrects for the rounding, so that no digits cancel when the mean is large. */
typedef struct {
    float c, a, b;
} plane_map;

static plane_map plane_affine(const in_job *j, int64_t pl, float shift, double s, double q) {
    const double n = (double)j->vol, dm = s / n;
    double var = q / n - dm * dm;
    if (var < 0.0) var = 0.0;
    const double mean = (double)shift + dm, ch = (double)j->scale[pl % j->C];
    const double a = ch / sqrt(var + j->eps);
    const float c = (float)mean;
    return (plane_map){c, (float)a, (float)(j->bias[pl % j->C] - (mean - (double)c) * a)};
}

/* One whole plane by one thread, its chunk sums added in chunk order as norm_planes_shared does. */
static void norm_plane(const in_job *j, int64_t pl) {
    const int64_t off = pl * j->vol;
    const float *x = j->x + off, shift = x[0];
    double s = 0.0, q = 0.0;
    for (int64_t c = 0, i = 0; i < j->vol; c++, i += IN_CHUNK) {
        double cs, cq;
        j->k->shifted_sums(x + i, chunk_len(j->vol, c), shift, &cs, &cq);
        s += cs;
        q += cq;
    }
    const plane_map m = plane_affine(j, pl, shift, s, q);
    j->k->scale_shift_act(x, j->vol, m.c, m.a, m.b, j->res ? j->res + off : NULL, &j->act, j->y + off);
}

/* Few planes for many threads: all threads work through the planes one at a time, sharing each
   plane's chunks (sums into ws, then the normalisation). */
static void norm_planes_shared(const in_job *j, int64_t planes, int64_t chunks, double *ws, int t) {
#pragma omp parallel num_threads(t)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int64_t off = pl * j->vol;
        const float *x = j->x + off, shift = x[0];
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++)
            j->k->shifted_sums(x + c * IN_CHUNK, chunk_len(j->vol, c), shift, &ws[2 * c], &ws[2 * c + 1]);
        double s = 0.0, q = 0.0;
        for (int64_t c = 0; c < chunks; c++) {
            s += ws[2 * c];
            q += ws[2 * c + 1];
        }
        const plane_map m = plane_affine(j, pl, shift, s, q);
        /* the barrier closing this loop keeps ws until every thread has read it */
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            const int64_t o = off + c * IN_CHUNK;
            j->k->scale_shift_act(j->x + o, chunk_len(j->vol, c), m.c, m.a, m.b, j->res ? j->res + o : NULL,
                                  &j->act, j->y + o);
        }
    }
}

static int in_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const in_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "InstanceNormalization run before infer");
    const in_job j = {
        .k = oct_norm_kernels(),
        .x = oct_in(ctx, n, 0)->data,
        .scale = oct_in(ctx, n, 1)->data,
        .bias = oct_in(ctx, n, 2)->data,
        .res = nn_residual(ctx, n),
        .y = oct_out(ctx, n, 0)->data,
        .act = nn_node_act(n),
        .C = p->C,
        .vol = p->vol,
        .eps = p->eps,
    };
    const int64_t planes = p->N * p->C;
    if (planes == 0 || p->vol == 0) return 0;
    int t = nn_run_threads(ctx, p->threads);
    if (planes * p->vol <= 65536) t = 1; /* not worth waking threads */
    /* Whole planes per thread unless that leaves threads idle for long: planes not a multiple of
       the threads and fewer than 8 per thread, with chunks enough to share. */
    if (t > 1 && planes % t != 0 && planes < 8 * t && p->chunks >= t) {
        norm_planes_shared(&j, planes, p->chunks, ctx->workspace, t);
        return 0;
    }
#pragma omp parallel for num_threads(t) schedule(dynamic, 1) if (t > 1)
    for (int64_t pl = 0; pl < planes; pl++) norm_plane(&j, pl);
    return 0;
}

const oct_op oct_op_instance_normalization = {"", "InstanceNormalization", 0, in_infer, in_run, NULL};
