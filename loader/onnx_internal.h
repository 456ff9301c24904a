/* Loader internals shared by the ONNX model parser and the TensorProto reader. */
#ifndef OCT_ONNX_INTERNAL_H
#define OCT_ONNX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

#include "../engine/error.h"
#include "../engine/graph.h"
#include "loader.h"

/* Largest tensor the loader accepts (bytes). */
#define OCT_MAX_TENSOR_BYTES ((uint64_t)4 << 30)

/* Walks the protobuf wire format of buf as a `desc` message before protobuf-c unpacks it:
   rejects truncation, nesting deeper than protobuf-c can recurse safely, and inputs whose
   decoded form would be far larger than the file. `what` names the input in errors. */
int oct_pb_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                      const char *what, octet_error *err);

/* Reads a protobuf varint at *p (advancing it); -1 if truncated or longer than 10 bytes. */
int oct_pb_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out);

/* Copies a (wire-checked) ModelProto without the raw_data of its graph's initializers into a
   malloc'ed skeleton; slices[i] locates the raw_data of the i-th initializer in buf. */
int oct_pb_split_raw_data(const uint8_t *buf, size_t len, uint8_t **skeleton, size_t *skeleton_len,
                          oct_pb_slice **slices, size_t *n_slices, octet_error *err);

/* The ONNX name of a TensorProto data type ("float16", ...). */
const char *oct_onnx_dtype_name(int32_t data_type);

/* Converts a TensorProto into t (t->data malloc'ed, never NULL). Takes ownership of raw_data
   when present (the message must come from protobuf-c's default allocator). base_dir resolves
   external data; NULL refuses it. Errors name the tensor. */
int oct_pb_tensor_take(Onnx__TensorProto *tp, const char *base_dir, oct_tensor *t, octet_error *err);

#endif
