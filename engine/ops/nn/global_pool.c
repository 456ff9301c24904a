/* GlobalAveragePool and GlobalMaxPool: one value per (batch, channel) plane, any number of
   spatial dims.

   The SE squeeze of EfficientNet-style blocks (engine/passes/fuse_se.c) is a GlobalAveragePool
   with the depthwise Conv that produced its input fused in: inputs X, W[, B] and the attributes
   of the Conv, outputs Y (the Conv's output, still read by the excite Mul) and the pooled means,
   the Conv's activation in the attributes below (not in the node's epilogue, which would read as
   an activation of the pool's own output). It runs through the Conv op on a view of the node; the
   depthwise strategy sums each channel while it writes the rows (conv_depthwise.c), so the pool
   costs no second pass over Y. Graphs that leave the engine get the two nodes back
   (oct_pass_unfuse_se). */
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "misc_kernels.h"
#include "nn_common.h"
#include "team.h"

typedef struct {
    int64_t planes, vol;
    int threads;
    /* the fused form */
    const oct_op *conv;
    void *conv_params;
    oct_epilogue epi;       /* the Conv's activation, no residual */
    int conv_writes_means;  /* the depthwise strategy runs and fills output 1 itself */
} gpool_params;

/* Attributes that mark and describe the fused form (set only by fuse_se.c). */
#define FUSED_ACT "fused_conv_activation"
#define FUSED_ALPHA "fused_conv_alpha"
#define FUSED_BETA "fused_conv_beta"

static void gpool_free(void *pp) {
    gpool_params *p = pp;
    if (!p) return;
    if (p->conv && p->conv_params) p->conv->free_params ? p->conv->free_params(p->conv_params) : free(p->conv_params);
    free(p);
}

/* The fused node as the Conv it holds: same inputs and attributes, one output, the activation
   as epilogue. Shares n's arrays; params are the caller's. */
static oct_node conv_view(const oct_node *n, const oct_epilogue *epi, void *params, int n_out) {
    static char conv_type[] = "Conv";
    oct_node c = *n;
    c.op_type = conv_type;
    c.n_out = n_out;
    c.epi = *epi;
    c.params = params;
    return c;
}

static int fused_infer(oct_graph *g, oct_node *n, gpool_params *p, octet_error *err) {
    if (n->n_out != 2)
        return oct_fail(err, OCTET_ERR_FORMAT, "fused Conv+%s has %d outputs, expects 2", n->op_type, n->n_out);
    if (oct_check_inputs(n, 2, 3, err)) return -1;
    const int64_t act = oct_attr_int(n, FUSED_ACT, 0);
    if (act < OCT_ACT_NONE || act > OCT_ACT_TANH)
        return oct_fail(err, OCTET_ERR_FORMAT, "fused Conv activation %lld is not known", (long long)act);
    p->epi = (oct_epilogue){.act = (oct_act_kind)act, .alpha = oct_attr_float(n, FUSED_ALPHA, 0.f),
                            .beta = oct_attr_float(n, FUSED_BETA, 0.f), .residual = -1};
    if (!(p->conv = oct_op_find("", "Conv"))) return oct_fail(err, OCTET_ERR_INTERNAL, "Conv is not registered");
    oct_node c = conv_view(n, &p->epi, NULL, 1);
    const int rc = p->conv->infer(g, &c, err);
    p->conv_params = c.params; /* freed with p, also on failure */
    if (rc) return oct_fail_context(err, "fused Conv");
    n->workspace_bytes = c.workspace_bytes;
    n->run_unread_inputs = c.run_unread_inputs;
    const conv_params *cp = c.params;
    p->conv_writes_means = cp->mode == CONV_DEPTHWISE;
    const oct_value *y = oct_out_val(g, n, 0);
    int64_t dims[OCTET_MAX_RANK];
    p->planes = y->dims[0] * y->dims[1];
    p->vol = 1;
    for (int d = 0; d < y->rank; d++) {
        dims[d] = d < 2 ? y->dims[d] : 1;
        if (d >= 2) p->vol *= y->dims[d];
    }
    if (p->vol == 0 && p->planes > 0)
        return oct_fail(err, OCTET_ERR_SHAPE, "%s over an empty spatial extent", n->op_type);
    oct_set_output(g, n, 1, OCTET_FLOAT, y->rank, dims);
    return 0;
}

static int gpool_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (oct_node_attr(n, FUSED_ACT) && strcmp(n->op_type, "GlobalAveragePool") == 0) {
        gpool_params *p = calloc(1, sizeof *p);
        if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        n->params = p;
        p->threads = nn_plan_threads();
        return fused_infer(g, n, p, err);
    }
    if (oct_check_inputs(n, 1, 1, err)) return -1;
    if (n->n_out != 1) return oct_fail(err, OCTET_ERR_FORMAT, "%s has %d outputs, expects 1", n->op_type, n->n_out);
    if (nn_require_float(g, n, 0, "input", err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (x->rank < 3)
        return oct_fail(err, OCTET_ERR_SHAPE, "%s input '%s' has rank %d, needs at least 3", n->op_type, x->name,
                        x->rank);
    gpool_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    int64_t dims[OCTET_MAX_RANK];
    p->planes = x->dims[0] * x->dims[1];
    p->vol = 1;
    for (int d = 0; d < x->rank; d++) {
        dims[d] = d < 2 ? x->dims[d] : 1;
        if (d >= 2) p->vol *= x->dims[d];
    }
    if (p->vol == 0 && p->planes > 0)
        return oct_fail(err, OCTET_ERR_SHAPE, "%s over an empty spatial extent", n->op_type);
    p->threads = nn_plan_threads();
    oct_set_output(g, n, 0, OCTET_FLOAT, x->rank, dims);
    return 0;
}

typedef struct {
    const gpool_params *p;
    const float *x;
    float *y;
    int is_max;
    const oct_misc_kernel_set *k;
} gpool_job;

static void gpool_plane(void *arg, int64_t c, int tid) {
    (void)tid;
    const gpool_job *j = arg;
    const float *xc = j->x + c * j->p->vol;
    /* the sum comes back in double: planes reach 96^3 elements */
    j->y[c] = j->is_max ? j->k->max_f32(xc, j->p->vol) : (float)(j->k->sum_f32(xc, j->p->vol) / (double)j->p->vol);
}

static int gpool_run(const oct_run_ctx *ctx, const oct_node *n, int is_max, octet_error *err) {
    const gpool_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "%s run before infer", n->op_type);
    const float *x = oct_in(ctx, n, 0)->data;
    float *y = oct_out(ctx, n, 0)->data;
    if (p->conv) {
        /* The fused form: the Conv writes output 0 and, when depthwise, the means as well. */
        const oct_node c = conv_view(n, &p->epi, p->conv_params, p->conv_writes_means ? 2 : 1);
        if (p->conv->run(ctx, &c, err)) return -1;
        if (p->conv_writes_means) return 0;
        x = y; /* another strategy ran: pool its output */
        y = oct_out(ctx, n, 1)->data;
    }
    gpool_job j = {p, x, y, is_max, oct_misc_kernels()};
    oct_parallel_for(ctx, p->planes * p->vol > 65536 ? nn_run_threads(ctx, p->threads) : 1, p->planes, gpool_plane, &j);
    return 0;
}

static int gavg_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) { return gpool_run(ctx, n, 0, err); }
static int gmax_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) { return gpool_run(ctx, n, 1, err); }

const oct_op oct_op_global_average_pool = {"", "GlobalAveragePool", OCT_OP_TEAM, gpool_infer, gavg_run, gpool_free};
const oct_op oct_op_global_max_pool = {"", "GlobalMaxPool", OCT_OP_TEAM, gpool_infer, gmax_run, gpool_free};
