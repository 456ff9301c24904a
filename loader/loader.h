/* Readers and writers for the files octet consumes: ONNX models, .npy arrays, TensorProto .pb.
   Everything read is validated; failures name the file, node or tensor at fault. */
#ifndef OCT_LOADER_H
#define OCT_LOADER_H

#include <stddef.h>

#include "../engine/error.h"
#include "../engine/graph.h"

/* Reads a whole file, at most max_bytes (fails beyond). *data is malloc'ed (NUL-terminated). */
int oct_read_file(const char *path, size_t max_bytes, void **data, size_t *size, octet_error *err);

/* Where an initializer's raw_data lies in a serialized model. */
typedef struct {
    size_t offset, len;
    int present;
} oct_pb_slice;

/* A malloc'ed copy of the slice s of base (NULL when out of memory); with release_pages, base is
   a read-only private file mapping and the whole pages the copy read are returned to the kernel. */
void *oct_pb_slice_copy(const void *base, const oct_pb_slice *s, int release_pages);

/* Parses a serialized ModelProto into a graph. base_dir resolves external data (NULL: refuse
   external data). Checks opsets (default domain 7..17), indices, dtypes, sizes. */
oct_graph *oct_onnx_parse(const void *bytes, size_t size, const char *base_dir, octet_error *err);
/* The same; with release_pages, bytes is a read-only private file mapping whose pages the parser
   returns to the kernel (MADV_DONTNEED) once it has copied the weights out of them: the mapped
   file and the weights then never both stay resident (a later read faults the file back in).
   value_sources (may be NULL) receives a malloc'ed array, one entry per graph value, saying where
   an initializer's bytes lie in `bytes` (present = 0 for every other value). */
oct_graph *oct_onnx_parse_buffer(const void *bytes, size_t size, const char *base_dir, int release_pages,
                                 oct_pb_slice **value_sources, octet_error *err);

/* .npy (version 1.0-3.0, little-endian, C order; dtypes f4 u1 i1 i4 i8 b1). t->data is malloc'ed. */
int oct_npy_read(const char *path, oct_tensor *t, octet_error *err);
int oct_npy_write(const char *path, const oct_tensor *t, octet_error *err);
/* The same from a buffer holding a whole .npy file (e.g. an .npz member). t->data is malloc'ed. */
int oct_npy_parse(const void *bytes, size_t size, oct_tensor *t, octet_error *err);

/* One serialized TensorProto (.pb). name (may be NULL) receives a malloc'ed copy of its name. */
int oct_tensor_pb_read(const char *path, oct_tensor *t, char **name, octet_error *err);

/* Serialises the live nodes of g as an ONNX ModelProto at path: constants read by live nodes become
   initializers, graph inputs/outputs keep their names, dtypes and shapes (symbolic dims by name),
   fused epilogues (n->epi) are written back as standard nodes (Add, Relu, Clip, Sigmoid, Mul, ...),
   opsets: default domain g->opset, plus com.microsoft / octet when nodes use them. ONNX Runtime
   must be able to load what this writes when only standard and com.microsoft ops are used. */
int oct_onnx_write(const oct_graph *g, const char *path, octet_error *err);
/* As oct_onnx_write, with the nodes order[0..n_order) in that order (e.g. a plan's exec list):
   each must be live and read only graph inputs, constants and outputs of earlier nodes. order
   NULL: every live node, in a topological order (ties in node index order). */
int oct_onnx_write_nodes(const oct_graph *g, const int *order, int n_order, const char *path, octet_error *err);
/* The same model in memory: *bytes is malloc'ed (the caller frees it), *size its length. */
int oct_onnx_serialize(const oct_graph *g, const int *order, int n_order, void **bytes, size_t *size,
                       octet_error *err);

/* Either of the above by extension (.npy, else .pb). */
int oct_tensor_file_read(const char *path, oct_tensor *t, octet_error *err);

#endif
