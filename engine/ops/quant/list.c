/* The quantized op family. */
#include "../../op.h"

const oct_op *const oct_ops_quant[] = {
    NULL
};
