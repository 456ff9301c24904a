/* Gemm (opsets 7..17): Y = alpha * A' * B' + beta * C, with transA/transB and C broadcast to
   [M, N]; the fused residual/activation run in the same tile write-back as alpha and C.
   A constant B (the weights of a fully connected layer) is packed once at plan time, transB folded
   into the packing; otherwise transposed operands are copied into the workspace per run. */
#include <stdlib.h>

#include "nn_common.h"

typedef struct {
    int64_t M, N, K;
    int trans_a, trans_b;
    int64_t c_rs, c_cs; /* C's strides over [M, N]; 0 along a broadcast dim */
    int threads;
    size_t a_bytes, b_bytes;
    nn_packed b_packed; /* data NULL when B is not constant */
} gemm_params;

static void gemm_free(void *pp) {
    gemm_params *p = pp;
    if (!p) return;
    free(p->b_packed.data);
    free(p);
}

static int gemm_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (oct_check_inputs(n, 2, 3, err)) return -1;
    if (n->n_out != 1) return oct_fail(err, OCTET_ERR_FORMAT, "Gemm has %d outputs, expects 1", n->n_out);
    if (nn_require_float(g, n, 0, "A", err) || nn_require_float(g, n, 1, "B", err)) return -1;
    const oct_value *a = oct_in_val(g, n, 0), *b = oct_in_val(g, n, 1);
    if (a->rank != 2 || b->rank != 2)
        return oct_fail(err, OCTET_ERR_SHAPE, "Gemm needs 2-D A and B, got ranks %d and %d", a->rank, b->rank);
    gemm_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    p->trans_a = oct_attr_int(n, "transA", 0) != 0;
    p->trans_b = oct_attr_int(n, "transB", 0) != 0;
    p->M = p->trans_a ? a->dims[1] : a->dims[0];
    p->K = p->trans_a ? a->dims[0] : a->dims[1];
    const int64_t kb = p->trans_b ? b->dims[1] : b->dims[0];
    p->N = p->trans_b ? b->dims[0] : b->dims[1];
    if (kb != p->K)
        return oct_fail(err, OCTET_ERR_SHAPE, "Gemm inner dims differ: A gives K=%lld, B gives K=%lld",
                        (long long)p->K, (long long)kb);
    if (nn_check_int(p->M, "M", err) || nn_check_int(p->N, "N", err) || nn_check_int(p->K, "K", err)) return -1;
    if (oct_node_has_input(n, 2)) {
        if (nn_require_float(g, n, 2, "C", err)) return -1;
        const oct_value *c = oct_in_val(g, n, 2);
        int64_t cm = 1, cn = 1;
        if (c->rank == 2) { cm = c->dims[0]; cn = c->dims[1]; }
        else if (c->rank == 1) cn = c->dims[0];
        else if (c->rank != 0)
            return oct_fail(err, OCTET_ERR_SHAPE, "C '%s' has rank %d, expects at most 2", c->name, c->rank);
        if ((cm != 1 && cm != p->M) || (cn != 1 && cn != p->N))
            return oct_fail(err, OCTET_ERR_SHAPE, "C '%s' cannot broadcast to [%lld, %lld]", c->name,
                            (long long)p->M, (long long)p->N);
        p->c_cs = cn == 1 ? 0 : 1;
        p->c_rs = cm == 1 ? 0 : cn;
    }
    int64_t dims[2] = {p->M, p->N};
    oct_set_output(g, n, 0, OCTET_FLOAT, 2, dims);
    if (nn_check_epilogue(g, n, err)) return -1;
    p->threads = nn_plan_threads();
    p->a_bytes = p->trans_a ? nn_float_bytes(p->M * p->K) : 0;
    if (!g->shapes_only && p->M && p->N && p->K && nn_input_is_const(g, n, 1) &&
        nn_pack_b(&p->b_packed, (int)p->K, (int)p->N, b->data, p->trans_b, err))
        return -1;
    p->b_bytes = p->trans_b && !p->b_packed.data ? nn_float_bytes(p->K * p->N) : 0;
    if (p->b_packed.data) n->run_unread_inputs |= 1u << 1;
    n->workspace_bytes = p->a_bytes + p->b_bytes;
    return 0;
}

static int gemm_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const gemm_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "Gemm run before infer");
    const float *a = oct_in(ctx, n, 0)->data, *b = oct_in(ctx, n, 1)->data;
    float *y = oct_out(ctx, n, 0)->data;
    if (p->M == 0 || p->N == 0) return 0;
    if (p->trans_a) {
        float *t = ctx->workspace;
        oct_ref_transpose_f32(a, p->K, p->M, p->M, t);
        a = t;
    }
    const float *bp = nn_packed_for(&p->b_packed, 0);
    if (p->trans_b && !bp) {
        float *t = (float *)((char *)ctx->workspace + p->a_bytes);
        oct_ref_transpose_f32(b, p->N, p->K, p->K, t);
        b = t;
    }
    oct_epilogue_args e = {.alpha = oct_attr_float(n, "alpha", 1.f), .res = nn_residual(ctx, n),
                           .ldr = p->N, .act = nn_node_act(n)};
    if (oct_node_has_input(n, 2)) {
        e.c = oct_in(ctx, n, 2)->data;
        e.c_rs = p->c_rs;
        e.c_cs = p->c_cs;
        e.beta = oct_attr_float(n, "beta", 1.f);
        if (e.beta == 0.f) e.c = NULL; /* beta 0 ignores C, even NaN/Inf in it, as the spec's formula reads */
    }
    const nn_gemm gm = {.arch = nn_packed_arch(&p->b_packed), .m = (int)p->M, .n = (int)p->N, .k = (int)p->K,
                        .a = a, .lda = (int)p->K, .b = b, .bp = bp, .ldb = (int)p->N, .y = y, .ldy = (int)p->N,
                        .e = &e};
    nn_gemm_run(ctx, nn_run_threads(ctx, p->threads), &gm);
    return 0;
}

const oct_op oct_op_gemm = {"", "Gemm", OCT_OP_TEAM, gemm_infer, gemm_run, gemm_free};
