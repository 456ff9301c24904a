/* The nn op family. */
#include "../../op.h"

extern const oct_op oct_op_conv, oct_op_conv_transpose, oct_op_gemm, oct_op_matmul, oct_op_max_pool,
    oct_op_average_pool, oct_op_global_average_pool, oct_op_global_max_pool, oct_op_batch_normalization,
    oct_op_instance_normalization, oct_op_layer_normalization;

const oct_op *const oct_ops_nn[] = {
    &oct_op_conv,
    &oct_op_conv_transpose,
    &oct_op_gemm,
    &oct_op_matmul,
    &oct_op_max_pool,
    &oct_op_average_pool,
    &oct_op_global_average_pool,
    &oct_op_global_max_pool,
    &oct_op_batch_normalization,
    &oct_op_instance_normalization,
    &oct_op_layer_normalization,
    NULL
};
