/* com.microsoft QLinearConcat: Y_scale, Y_zero_point, then one (X, X_scale, X_zero_point) triple
   per input; attribute axis. Every input and the output share one 8-bit type. An input quantized
   like the output is copied; any other is requantized through a 256-entry table Q_y(DQ_x(b)) built
   at plan time (exact; the scales and zero points must be constants). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/nn_common.h"
#include "misc_kernels.h"
#include "qops_common.h"

typedef struct {
    int count;             /* inputs */
    int64_t outer;         /* product of the dims before axis */
    int64_t out_row;       /* bytes of one output row (axis and inner dims) */
    int64_t *row, *offset; /* per input: bytes of its row, where it starts in the output row */
    int64_t *chunks;       /* per input: work items per row */
    int64_t items_per_outer;
    uint8_t (*tables)[256];
    unsigned char *copy;   /* per input: quantized like the output, copied as is */
    int threads;
} qconcat_params;

enum { CONCAT_CHUNK = 1 << 16 };

static void qconcat_free(void *pp) {
    qconcat_params *p = pp;
    if (!p) return;
    free(p->row);
    free(p->offset);
    free(p->chunks);
    free(p->tables);
    free(p->copy);
    free(p);
}

static int qconcat_shapes(oct_graph *g, const oct_node *n, qconcat_params *p, int64_t *dims, int *rank_out,
                          int64_t *axis_out, octet_error *err) {
    const oct_value *x0 = oct_in_val(g, n, 2);
    const int rank = x0->rank;
    if (rank < 1) return oct_fail(err, OCTET_ERR_SHAPE, "QLinearConcat input '%s' is a scalar", x0->name);
    const oct_attr *ax = oct_node_attr(n, "axis");
    if (!ax) return oct_fail(err, OCTET_ERR_FORMAT, "QLinearConcat needs the attribute 'axis'");
    int64_t axis;
    if (oct_norm_axis(ax->i, rank, &axis, err)) return -1;
    memcpy(dims, x0->dims, sizeof(int64_t) * (size_t)rank);
    dims[axis] = 0;
    for (int i = 0; i < p->count; i++) {
        const oct_value *x = oct_in_val(g, n, 2 + 3 * i);
        if (x->rank != rank)
            return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' has rank %d, the first input has rank %d", x->name, x->rank,
                            rank);
        for (int d = 0; d < rank; d++)
            if (d != axis && x->dims[d] != x0->dims[d])
                return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' has dim %d = %lld, the first input has %lld", x->name,
                                d, (long long)x->dims[d], (long long)x0->dims[d]);
        if (x->dims[axis] > INT64_MAX / 2 - dims[axis])
            return oct_fail(err, OCTET_ERR_SHAPE, "concatenated dim overflows");
        dims[axis] += x->dims[axis];
    }
    *rank_out = rank;
    *axis_out = axis;
    return 0;
}

static double identity(double x, const void *c) {
    (void)c;
    return x;
}

static int qconcat_infer(oct_graph *g, oct_node *n, octet_error *err) {
    nn_reset_params(n);
    if (n->n_in < 5 || (n->n_in - 2) % 3 != 0)
        return oct_fail(err, OCTET_ERR_FORMAT,
                        "QLinearConcat takes Y_scale, Y_zero_point and (X, X_scale, X_zero_point) triples; has %d inputs",
                        n->n_in);
    const int count = (n->n_in - 2) / 3;
    unsigned required = 1u; /* Y_scale, then each X and X_scale */
    for (int i = 0; i < count && 3 * i + 3 < 32; i++) required |= 3u << (2 + 3 * i);
    if (qops_check_inputs(n, n->n_in, n->n_in, required, err)) return -1;
    for (int i = 0; i < count; i++)
        if (n->in[2 + 3 * i] < 0 || n->in[3 + 3 * i] < 0)
            return oct_fail(err, OCTET_ERR_FORMAT, "QLinearConcat input %d or its scale is missing", i);
    if (quant_require_dtype(g, n, 2, "input X", OCTET_UINT8, OCTET_INT8, err)) return -1;
    const octet_dtype t = oct_in_val(g, n, 2)->dtype;
    if (qops_check_qparams(g, n, 0, 1, t, "Y", err)) return -1;
    for (int i = 0; i < count; i++) {
        char what[32];
        snprintf(what, sizeof what, "X%d", i);
        if (quant_require_dtype(g, n, 2 + 3 * i, "input X", t, t, err) ||
            qops_check_qparams(g, n, 3 + 3 * i, 4 + 3 * i, t, what, err))
            return -1;
    }
    qconcat_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    n->params = p;
    p->count = count;
    int rank = 0;
    int64_t axis = 0, dims[OCTET_MAX_RANK];
    if (qconcat_shapes(g, n, p, dims, &rank, &axis, err)) return -1;
    oct_set_output(g, n, 0, t, rank, dims);
    p->row = calloc((size_t)count, sizeof(int64_t));
    p->offset = calloc((size_t)count, sizeof(int64_t));
    p->chunks = calloc((size_t)count, sizeof(int64_t));
    p->tables = calloc((size_t)count, 256);
    p->copy = calloc((size_t)count, 1);
    if (!p->row || !p->offset || !p->chunks || !p->tables || !p->copy)
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    int64_t inner = 1;
    p->outer = 1;
    for (int d = 0; d < axis; d++) p->outer *= dims[d];
    for (int d = (int)axis + 1; d < rank; d++) inner *= dims[d];
    p->out_row = dims[axis] * inner;
    qops_qparams yq;
    if (qops_const_qparams(g, n, 0, 1, "Y", &yq, err)) return -1;
    const int s8 = t == OCTET_INT8;
    int64_t off = 0;
    for (int i = 0; i < count; i++) {
        p->row[i] = oct_in_val(g, n, 2 + 3 * i)->dims[axis] * inner;
        p->offset[i] = off;
        off += p->row[i];
        p->chunks[i] = (p->row[i] + CONCAT_CHUNK - 1) / CONCAT_CHUNK;
        p->items_per_outer += p->chunks[i];
        char what[32];
        snprintf(what, sizeof what, "X%d", i);
        qops_qparams xq;
        if (qops_const_qparams(g, n, 3 + 3 * i, 4 + 3 * i, what, &xq, err)) return -1;
        p->copy[i] = xq.scale == yq.scale && xq.zp == yq.zp;
        if (!p->copy[i]) qops_build_table(s8, xq, s8, yq, quant_min(t), quant_max(t), identity, NULL, p->tables[i]);
    }
    p->threads = nn_plan_threads();
    n->workspace_bytes = 0;
    return 0;
}

static int qconcat_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    const qconcat_params *p = n->params;
    if (!p) return oct_fail(err, OCTET_ERR_INTERNAL, "QLinearConcat run before infer");
    uint8_t *y = oct_out(ctx, n, 0)->data;
    const int64_t items = p->outer * p->items_per_outer;
    const int t = nn_run_threads(ctx, p->threads);
    const oct_misc_kernel_set *k = oct_misc_kernels();
#pragma omp parallel for num_threads(t) schedule(dynamic, 1) if (t > 1 && items > 1)
    for (int64_t it = 0; it < items; it++) {
        const int64_t o = it / p->items_per_outer;
        int64_t c = it % p->items_per_outer;
        int i = 0;
        while (c >= p->chunks[i]) c -= p->chunks[i++];
        const int64_t b = c * CONCAT_CHUNK, len = p->row[i] - b < CONCAT_CHUNK ? p->row[i] - b : CONCAT_CHUNK;
        const uint8_t *x = (const uint8_t *)oct_in(ctx, n, 2 + 3 * i)->data + o * p->row[i] + b;
        uint8_t *dst = y + o * p->out_row + p->offset[i] + b;
        if (p->copy[i]) memcpy(dst, x, (size_t)len);
        else k->qlut(x, len, p->tables[i], dst);
    }
    return 0;
}

const oct_op oct_op_qlinear_concat = {"com.microsoft", "QLinearConcat", 0, qconcat_infer, qconcat_run, qconcat_free};
