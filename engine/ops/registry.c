/* Finds an op by domain and type across the op families. */
#include <string.h>

#include "../op.h"

static const oct_op *const *const families[] = {oct_ops_nn, oct_ops_math, oct_ops_tensor,
                                                      oct_ops_quant};

const oct_op *oct_op_find(const char *domain, const char *type) {
    if (!domain || strcmp(domain, "ai.onnx") == 0) domain = "";
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const oct_op *const *op = families[f]; *op; op++)
            if (strcmp((*op)->type, type) == 0 && strcmp((*op)->domain, domain) == 0) return *op;
    return NULL;
}
