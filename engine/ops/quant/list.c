/* The quantized op family: element-wise (de)quantization and the int8 convolution and matmul. */
#include "../../op.h"

extern const oct_op oct_op_quantize_linear, oct_op_dequantize_linear, oct_op_dynamic_quantize_linear;
extern const oct_op oct_op_qlinear_conv, oct_op_conv_integer, oct_op_qlinear_matmul, oct_op_matmul_integer;

const oct_op *const oct_ops_quant[] = {
    &oct_op_quantize_linear,
    &oct_op_dequantize_linear,
    &oct_op_dynamic_quantize_linear,
    &oct_op_qlinear_conv,
    &oct_op_conv_integer,
    &oct_op_qlinear_matmul,
    &oct_op_matmul_integer,
    NULL
};
