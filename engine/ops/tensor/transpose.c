/* Transpose: output dim k is input dim perm[k]; perm defaults to the reversed dims. The data
   movement is the blocked kernel in kernels/ref/transpose.c. */
#include <stdlib.h>

#include "ref/tensor_kernels.h"
#include "tensor_ops.h"

typedef struct {
    int perm[OCTET_MAX_RANK];
} transpose_params;

static int infer_transpose(oct_graph *g, oct_node *n, octet_error *err) {
    if (oct_check_inputs(n, 1, 1, err)) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    int64_t perm[OCTET_MAX_RANK];
    int count = oct_attr_ints(n, "perm", perm, OCTET_MAX_RANK, err);
    if (count == -2) return -1;
    if (count < 0) {
        count = x->rank;
        for (int k = 0; k < count; k++) perm[k] = count - 1 - k;
    }
    if (count != x->rank)
        return oct_fail(err, OCTET_ERR_FORMAT, "perm has %d entries for an input of rank %d", count,
                        x->rank);
    transpose_params *p = calloc(1, sizeof *p);
    if (!p) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    bool seen[OCTET_MAX_RANK] = {false};
    int64_t out[OCTET_MAX_RANK];
    for (int k = 0; k < count; k++) {
        if (perm[k] < 0 || perm[k] >= count || seen[perm[k]]) {
            free(p);
            char buf[160];
            return oct_fail(err, OCTET_ERR_FORMAT, "perm %s is not a permutation of 0..%d",
                            tensor_format_dims(buf, sizeof buf, count, perm), count - 1);
        }
        seen[perm[k]] = true;
        p->perm[k] = (int)perm[k];
        out[k] = x->dims[perm[k]];
    }
    tensor_set_params(n, p);
    oct_set_output(g, n, 0, x->dtype, count, out);
    return 0;
}

static int run_transpose(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const transpose_params *p = n->params;
    const oct_tensor *x = oct_in(ctx, n, 0);
    oct_tensor *y = oct_out(ctx, n, 0);
    size_t es = octet_dtype_size(x->dtype);
    int64_t numel = octet_tensor_numel(x);
    oct_ref_transpose(x->data, y->data, es, x->rank, x->dims, p->perm,
                      tensor_threads(ctx, (size_t)(numel > 0 ? numel : 0) * es));
    return 0;
}

const oct_op oct_op_transpose = {"", "Transpose", 0, infer_transpose, run_transpose, NULL};
