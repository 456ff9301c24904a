/* Unary elementwise ops: Relu, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Erf, Exp, Sqrt,
   Neg, Abs. Float32 for all; Relu, Neg and Abs also take the integer dtypes. */
#include <string.h>

#include "math_ops.h"

typedef struct {
    const char *type;
    oct_unary_kind kind;
    int int_ok;          /* defined on integers too */
} unary_info;

static const unary_info infos[] = {
    {"Relu", OCT_UN_RELU, 1},           {"LeakyRelu", OCT_UN_LEAKY_RELU, 0},
    {"Sigmoid", OCT_UN_SIGMOID, 0},     {"HardSigmoid", OCT_UN_HARD_SIGMOID, 0},
    {"HardSwish", OCT_UN_HARD_SWISH, 0}, {"Tanh", OCT_UN_TANH, 0},
    {"Erf", OCT_UN_ERF, 0},             {"Exp", OCT_UN_EXP, 0},
    {"Sqrt", OCT_UN_SQRT, 0},           {"Neg", OCT_UN_NEG, 1},
    {"Abs", OCT_UN_ABS, 1},
};

typedef struct {
    oct_unary_kind kind;
    float alpha, beta;
} unary_params;

static int unary_infer(oct_graph *g, oct_node *n, octet_error *err) {
    const unary_info *info = NULL;
    for (size_t i = 0; i < sizeof infos / sizeof infos[0]; i++)
        if (strcmp(infos[i].type, n->op_type) == 0) info = &infos[i];
    if (!info) return oct_fail(err, OCTET_ERR_INTERNAL, "'%s' is not a unary math op", n->op_type);
    if (oct_check_inputs(n, 1, 1, err) < 0) return -1;
    const oct_value *x = oct_in_val(g, n, 0);
    if (x->dtype != OCTET_FLOAT && !(info->int_ok && oct_math_is_int(x->dtype)))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s does not support %s input '%s'", n->op_type,
                        octet_dtype_name(x->dtype), x->name);
    unary_params *p = oct_math_new_params(n, sizeof *p, err);
    if (!p) return -1;
    p->kind = info->kind;
    if (info->kind == OCT_UN_LEAKY_RELU) p->alpha = oct_attr_float(n, "alpha", 0.01f);
    if (info->kind == OCT_UN_HARD_SIGMOID) {
        p->alpha = oct_attr_float(n, "alpha", 0.2f);
        p->beta = oct_attr_float(n, "beta", 0.5f);
    }
    oct_set_output(g, n, 0, x->dtype, x->rank, x->dims);
    return 0;
}

typedef struct {
    const unary_params *p;
    octet_dtype dt;
    const void *x;
    void *y;
} unary_job;

static void unary_range(const void *arg, int64_t b, int64_t e) {
    const unary_job *j = arg;
    size_t es = octet_dtype_size(j->dt);
    const void *x = (const char *)j->x + b * (int64_t)es;
    void *y = (char *)j->y + b * (int64_t)es;
    if (j->dt == OCTET_FLOAT)
        oct_ref_unary_f32(j->p->kind, j->p->alpha, j->p->beta, x, y, (size_t)(e - b));
    else
        oct_ref_unary_int(j->p->kind, j->dt, 0, 0, x, y, (size_t)(e - b)); /* dtype checked by infer */
}

static int unary_run(const oct_run_ctx *ctx, const oct_node *n, octet_error *err) {
    (void)err;
    const oct_tensor *x = oct_in(ctx, n, 0);
    unary_job j = {n->params, x->dtype, x->data, oct_out(ctx, n, 0)->data};
    oct_math_parallel(ctx, octet_tensor_numel(x), OCT_MATH_GRAIN, unary_range, &j);
    return 0;
}

#define UNARY_OP(var, name) const oct_op var = {"", name, OCT_OP_TEAM, unary_infer, unary_run, NULL};
UNARY_OP(oct_op_relu, "Relu")
UNARY_OP(oct_op_leaky_relu, "LeakyRelu")
UNARY_OP(oct_op_sigmoid, "Sigmoid")
UNARY_OP(oct_op_hard_sigmoid, "HardSigmoid")
UNARY_OP(oct_op_hard_swish, "HardSwish")
UNARY_OP(oct_op_tanh, "Tanh")
UNARY_OP(oct_op_erf, "Erf")
UNARY_OP(oct_op_exp, "Exp")
UNARY_OP(oct_op_sqrt, "Sqrt")
UNARY_OP(oct_op_neg, "Neg")
UNARY_OP(oct_op_abs, "Abs")
