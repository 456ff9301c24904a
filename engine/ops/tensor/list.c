/* The tensor op family: data movement and shapes. */
#include "tensor_ops.h"

const oct_op *const oct_ops_tensor[] = {
    &oct_op_reshape, &oct_op_flatten, &oct_op_squeeze, &oct_op_unsqueeze, &oct_op_identity,
    &oct_op_dropout, &oct_op_transpose, &oct_op_concat, &oct_op_split, &oct_op_slice,
    &oct_op_gather, &oct_op_pad, &oct_op_resize, &oct_op_upsample, &oct_op_shape,
    &oct_op_constant, &oct_op_constant_of_shape, &oct_op_expand, &oct_op_tile,
    NULL
};
