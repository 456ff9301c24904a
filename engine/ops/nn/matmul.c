/* MatMul (opsets 1..17): numpy matmul semantics. Leading dims broadcast; a 1-D A is a row vector
   and a 1-D B a column vector, whose unit dim is then dropped from the result. Fused residual and
   activation run in the tile write-back. A constant B shared by every batch (weights) is packed
   once at plan time. */
#include <stdlib.h>

#include "nn_common.h"
#include "team.h"

typedef struct {
    int64_t M, N, K;
    int batch_rank;
    int64_t batch[OCTET_MAX_RANK];   /* output batch dims */
    int64_t a_step[OCTET_MAX_RANK];  /* element stride of A per output batch dim (0: broadcast) */
    int64_t b_step[OCTET_MAX_RANK];
    int64_t nbatch;
    int threads;
    nn_packed b_packed; /* data NULL unless B is constant and the same for every batch */
} matmul_params;

static void matmul_free(void *pp) {
    matmul_params *p = pp;
    if (!p) return;
    free(p->b_packed.data);
    free(p);
}

static int matmul_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (oct_check_inputs(n, 2, 2, err)) return -1;
    if (n->n_out != 1) return oct_fail(err, OCTET_ERR_FORMAT, "MatMul has %d outputs, expects 1", n->n_out);
    if (nn_require_float(g, n, 0, "A", err) || nn_require_float(g, n, 1, "B", err)) return -1;
    const oct_value *a = oct_in_val(g, n, 0), *b = oct_in_val(g, n, 1);
    if (a->rank < 1 || b->rank < 1)
        return oct_fail(err, OCTET_ERR_SHAPE, "MatMul operands must have rank >= 1 (got %d and %d)", a->rank, b->rank);
    matmul_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    const int ra = a->rank, rb = b->rank;
    p->M = ra == 1 ? 1 : a->dims[ra - 2];
    p->K = a->dims[ra - 1];
    const int64_t kb = rb == 1 ? b->dims[0] : b->dims[rb - 2];
    p->N = rb == 1 ? 1 : b->dims[rb - 1];
    if (kb != p->K)
        return oct_fail(err, OCTET_ERR_SHAPE, "MatMul inner dims differ: %lld vs %lld", (long long)p->K, (long long)kb);
    if (nn_check_int(p->M, "M", err) || nn_check_int(p->N, "N", err) || nn_check_int(p->K, "K", err)) return -1;
    const int ba = ra > 2 ? ra - 2 : 0, bb = rb > 2 ? rb - 2 : 0;
    if (oct_broadcast_shape(ba, a->dims, bb, b->dims, &p->batch_rank, p->batch, err)) return -1;
    /* Strides of A and B batches, right-aligned against the output batch dims. */
    int64_t sa = p->M * p->K, sb = p->K * p->N;
    p->nbatch = 1;
    for (int d = p->batch_rank - 1; d >= 0; d--) {
        int ia = d - (p->batch_rank - ba), ib = d - (p->batch_rank - bb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        p->a_step[d] = da == 1 ? 0 : sa;
        p->b_step[d] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
        p->nbatch *= p->batch[d];
    }
    int64_t dims[OCTET_MAX_RANK];
    int r = 0;
    for (int d = 0; d < p->batch_rank; d++) dims[r++] = p->batch[d];
    if (ra != 1) dims[r++] = p->M;
    if (rb != 1) dims[r++] = p->N;
    if (r > OCTET_MAX_RANK) return oct_fail(err, OCTET_ERR_UNSUPPORTED, "MatMul output rank %d is too large", r);
    oct_set_output(g, n, 0, OCTET_FLOAT, r, dims);
    if (nn_check_epilogue(g, n, err)) return -1;
    p->threads = nn_plan_threads();
    n->workspace_bytes = 0;
    int b_shared = 1;
    for (int d = 0; d < p->batch_rank; d++) b_shared &= p->b_step[d] == 0;
    if (!g->shapes_only && b_shared && p->M && p->N && p->K && nn_input_is_const(g, n, 1) &&
        nn_pack_b(&p->b_packed, (int)p->K, (int)p->N, b->data, 0, err))
        return -1;
    if (p->b_packed.data) n->run_unread_inputs |= 1u << 1;
    return 0;
}

typedef struct {
    const matmul_params *p;
    const float *a, *b, *bp; /* bp: b packed at plan time, or NULL */
    float *y;
    const float *res;
    oct_act act;
    const oct_sgemm_arch *arch;
    const oct_run_ctx *ctx; /* the threads of one product: ctx's, or (NULL) the caller's alone */
    int threads;
} matmul_job;

/* Product bi of the batch. */
static void matmul_product(void *arg, int64_t bi, int tid) {
    (void)tid;
    const matmul_job *j = arg;
    const matmul_params *p = j->p;
    const int64_t mn = p->M * p->N;
    int64_t rem = bi, aoff = 0, boff = 0;
    for (int d = p->batch_rank - 1; d >= 0; d--) {
        int64_t i = rem % p->batch[d];
        rem /= p->batch[d];
        aoff += i * p->a_step[d];
        boff += i * p->b_step[d];
    }
    const oct_epilogue_args e = {.alpha = 1.f, .res = j->res ? j->res + bi * mn : NULL, .ldr = p->N, .act = j->act};
    const nn_gemm gm = {.arch = j->arch, .m = (int)p->M, .n = (int)p->N, .k = (int)p->K, .a = j->a + aoff,
                        .lda = (int)p->K, .b = j->bp ? NULL : j->b + boff, .bp = j->bp, .ldb = (int)p->N,
                        .y = j->y + bi * mn, .ldy = (int)p->N, .e = &e};
    nn_gemm_run(j->ctx, j->threads, &gm);
}

static int matmul_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const matmul_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "MatMul run before infer");
    const float *a = oct_in(ctx, n, 0)->data, *b = oct_in(ctx, n, 1)->data;
    float *y = oct_out(ctx, n, 0)->data;
    const float *res = nn_residual(ctx, n);
    const oct_act act = nn_node_act(n);
    const int t = nn_run_threads(ctx, p->threads);
    const int64_t mn = p->M * p->N;
    if (mn == 0 || p->nbatch == 0) return 0;
    /* Many small products: one thread per batch; few large ones: threads inside each product. */
    const int per_batch = p->nbatch >= t ? 1 : t;
    matmul_job j = {p, a, b, nn_packed_for(&p->b_packed, 0), y, res, act, nn_packed_arch(&p->b_packed), ctx, t};
    if (per_batch == 1 && t > 1) {
        j.ctx = NULL; /* each product on one thread */
        j.threads = 1;
        oct_parallel_steal(ctx, t, p->nbatch, matmul_product, &j);
    } else {
        for (int64_t bi = 0; bi < p->nbatch; bi++) matmul_product(&j, bi, 0);
    }
    return 0;
}

const oct_op oct_op_matmul = {"", "MatMul", OCT_OP_TEAM, matmul_infer, matmul_run, matmul_free};
