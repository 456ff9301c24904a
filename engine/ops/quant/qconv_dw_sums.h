/* Channel sums of QLinearConv's depthwise output, for the fused SE squeeze (a
   QLinearGlobalAveragePool taking over its depthwise QLinearConv: qlinear_pool.c, fuse_se.c). */
#ifndef OCT_QCONV_DW_SUMS_H
#define OCT_QCONV_DW_SUMS_H

#include <stddef.h>

#include "qconv.h"

/* After this, each run of p also writes the exact sum of every output channel's 8-bit values (as
   the uint8 or int8 integers they are), int64 [N x M], at ctx->workspace + offset (8-byte
   aligned, past the workspace p asked for). Returns 0, or -1 when p does not run the depthwise
   strategy with requantization (or its weights are not packed): the caller then sums the output. */
int qconv_depthwise_want_sums(qconv_params *p, size_t offset);

#endif
