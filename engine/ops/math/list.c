/* The math op family. */
#include "math_ops.h"

const oct_op *const oct_ops_math[] = {
    &oct_op_relu, &oct_op_leaky_relu, &oct_op_prelu, &oct_op_clip, &oct_op_sigmoid,
    &oct_op_hard_sigmoid, &oct_op_hard_swish, &oct_op_tanh, &oct_op_erf, &oct_op_exp, &oct_op_sqrt,
    &oct_op_pow, &oct_op_neg, &oct_op_abs,
    &oct_op_add, &oct_op_sub, &oct_op_mul, &oct_op_div,
    &oct_op_max, &oct_op_min, &oct_op_sum, &oct_op_mean,
    &oct_op_equal, &oct_op_greater, &oct_op_less, &oct_op_where,
    &oct_op_softmax, &oct_op_log_softmax,
    &oct_op_reduce_mean, &oct_op_reduce_sum, &oct_op_reduce_max, &oct_op_argmax, &oct_op_topk,
    &oct_op_cast,
    NULL
};
