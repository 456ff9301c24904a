/* The quantized op family: element-wise (de)quantization and the int8 convolution and matmul. */
#include "../../op.h"

extern const oct_op oct_op_quantize_linear, oct_op_dequantize_linear, oct_op_dynamic_quantize_linear;
extern const oct_op oct_op_qlinear_conv, oct_op_conv_integer, oct_op_qlinear_matmul, oct_op_matmul_integer;
/* the remaining int8 ops (ONNX Runtime's com.microsoft QOperator set and octet's own) */
extern const oct_op oct_op_qlinear_add, oct_op_qlinear_mul, oct_op_qlinear_concat, oct_op_qlinear_sigmoid,
    oct_op_qlinear_leaky_relu, oct_op_qlinear_lut, oct_op_qlinear_global_average_pool, oct_op_qlinear_average_pool;
extern const oct_op oct_op_qgemm, oct_op_qlinear_conv_transpose, oct_op_qlinear_instance_norm;

const oct_op *const oct_ops_quant[] = {
    &oct_op_quantize_linear,
    &oct_op_dequantize_linear,
    &oct_op_dynamic_quantize_linear,
    &oct_op_qlinear_conv,
    &oct_op_conv_integer,
    &oct_op_qlinear_matmul,
    &oct_op_matmul_integer,
    &oct_op_qlinear_add,
    &oct_op_qlinear_mul,
    &oct_op_qlinear_concat,
    &oct_op_qlinear_sigmoid,
    &oct_op_qlinear_leaky_relu,
    &oct_op_qlinear_lut,
    &oct_op_qlinear_global_average_pool,
    &oct_op_qlinear_average_pool,
    &oct_op_qgemm,
    &oct_op_qlinear_conv_transpose,
    &oct_op_qlinear_instance_norm,
    NULL
};
