/* Internals of the ONNX writer (onnx_write*.c): the messages under construction live in one
   arena freed after packing, so no protobuf-c free_unpacked is involved and constant data is
   borrowed from the graph rather than copied. */
#ifndef OCT_ONNX_WRITE_INTERNAL_H
#define OCT_ONNX_WRITE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "onnx.pb-c.h"

#include "../engine/error.h"
#include "../engine/graph.h"

typedef struct {
    const oct_graph *g;
    octet_error *err;
    /* every allocation of the model under construction */
    void **allocs;
    size_t n_allocs, cap_allocs;
    /* graph.node and graph.initializer, sized up front (see onnx_write.c) */
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    bool *is_init;             /* per graph value: already written as an initializer */
    /* names in use: graph values plus generated values and nodes (open addressing) */
    const char **names;
    size_t names_cap, names_count;
    bool uses_ms, uses_octet;  /* nodes in domain com.microsoft / octet were written */
} oct_wctx;

/* Zeroed memory owned by the arena; NULL with c->err set when out of memory. */
void *owx_alloc(oct_wctx *c, size_t n);
char *owx_strdup(oct_wctx *c, const char *s);
/* Records a name as taken (the string must outlive c). Returns 0 or -1. */
int owx_name_take(oct_wctx *c, const char *name);
/* A name not used by any value or node yet: base+suffix, or base+suffix+"_<k>". Taken on return. */
char *owx_fresh_name(oct_wctx *c, const char *base, const char *suffix);

/* A TensorProto with raw_data borrowed from data. `what` names the tensor in errors. */
Onnx__TensorProto *owx_tensor(oct_wctx *c, const char *name, int dtype, int rank, const int64_t *dims,
                              const void *data, const char *what);
/* Writes constant value v as an initializer once. Returns 0 or -1. */
int owx_initializer(oct_wctx *c, int v);
/* Appends a node message whose inputs/outputs/attributes are allocated for the given counts. */
Onnx__NodeProto *owx_node(oct_wctx *c, const char *name, const char *op_type, const char *domain,
                          size_t n_in, size_t n_out, size_t n_attr);

/* Writes live node n, its fused epilogue expanded into standard nodes. Returns 0 or -1. */
int owx_write_node(oct_wctx *c, const oct_node *n);

#endif
