/* The graph IR: values (tensors) and nodes, held in flat arrays and referred to by index.
   The loader builds one; plan.c clones it per input shape and runs the passes on the clone. */
#ifndef OCT_GRAPH_H
#define OCT_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "octet.h"

typedef octet_tensor oct_tensor;

typedef enum {
    OCT_VAL_ACTIVATION = 0, /* produced by a node at run time, lives in the arena */
    OCT_VAL_INPUT,          /* a graph input fed by the caller */
    OCT_VAL_CONST           /* an initializer, a Constant or a folded result: data is set */
} oct_value_kind;

typedef struct {
    char *name;
    oct_value_kind kind;
    octet_dtype dtype;      /* 0 while unknown */
    int rank;               /* -1 while unknown */
    int64_t dims[OCTET_MAX_RANK];
    char *dim_params[OCTET_MAX_RANK]; /* symbolic dims of graph inputs/outputs (NULL if fixed) */
    void *data;             /* OCT_VAL_CONST: the data */
    bool data_owned;        /* false when data is borrowed from the model the graph was cloned from */
    int producer;           /* node index, or -1 */
    int n_consumers;        /* maintained by oct_graph_update_uses */
    bool is_output;         /* a graph output */
    bool value_needed;      /* an op's infer needed this graph input's values (see op.h) */
    /* memory plan */
    size_t nbytes;
    size_t arena_offset;
    bool planned;           /* has an arena slot */
} oct_value;

typedef enum {
    OCT_ATTR_UNDEFINED = 0,
    OCT_ATTR_FLOAT = 1,
    OCT_ATTR_INT = 2,
    OCT_ATTR_STRING = 3,
    OCT_ATTR_TENSOR = 4,
    OCT_ATTR_GRAPH = 5,
    OCT_ATTR_FLOATS = 6,
    OCT_ATTR_INTS = 7,
    OCT_ATTR_STRINGS = 8
} oct_attr_type; /* values follow ONNX AttributeProto.AttributeType */

typedef struct {
    char *name;
    oct_attr_type type;
    float f;
    int64_t i;
    char *s;              /* STRING (NUL-terminated copy) */
    int n;                /* count of FLOATS / INTS / STRINGS */
    float *floats;
    int64_t *ints;
    char **strings;
    oct_tensor *t;        /* TENSOR (data owned by the attribute) */
} oct_attr;

/* Activation fused into the write-back of a producer (Conv, ConvTranspose, Gemm, MatMul). */
typedef enum {
    OCT_ACT_NONE = 0,
    OCT_ACT_RELU,
    OCT_ACT_CLIP,        /* min(max(x, alpha), beta) */
    OCT_ACT_LEAKY_RELU,  /* x < 0 ? alpha * x : x */
    OCT_ACT_SIGMOID,
    OCT_ACT_SILU,        /* x * sigmoid(x) */
    OCT_ACT_HARD_SWISH,  /* x * clamp(x/6 + 1/2, 0, 1) */
    OCT_ACT_HARD_SIGMOID,/* clamp(alpha*x + beta, 0, 1) */
    OCT_ACT_TANH
} oct_act_kind;

/* y = act(op(x) + residual): the residual (a value of the output's shape) is added before the
   activation, as in ResNet's Add->Relu. */
typedef struct {
    oct_act_kind act;
    float alpha, beta;
    int residual;        /* value index, or -1 */
} oct_epilogue;

struct oct_op;

typedef struct {
    char *name;
    char *op_type;
    char *domain;          /* "" for the default ONNX domain */
    int n_in, n_out;
    int *in;               /* value indices; -1 for an omitted optional input */
    int *out;
    int n_attr;
    oct_attr *attrs;
    /* filled by the passes */
    const struct oct_op *op;
    void *params;          /* op-specific, parsed by op->infer; freed with op->free_params */
    oct_epilogue epi;
    size_t workspace_bytes;/* scratch the op asks for; planned in the arena for this node only */
    size_t workspace_offset;
    uint32_t run_unread_inputs; /* bit i: run() never reads input i's bytes (infer packed them);
                                   the model may then free a weight that only such inputs use */
    bool dead;             /* removed by a pass; skipped by everything after */
    char *fused;           /* human-readable list of what was fused in, e.g. "BatchNormalization+Relu" */
    const char *why_fp32;  /* set by the QDQ lowering on nodes of a quantized model that stay fp32:
                              why they were not lowered (a static string, not owned) */
} oct_node;

typedef struct {
    char *name;
    int64_t opset;          /* default-domain opset version */
    int64_t ms_opset;       /* com.microsoft opset, 0 if not imported */
    int n_values, cap_values;
    oct_value *values;
    int n_nodes, cap_nodes;
    oct_node *nodes;
    int n_inputs, n_outputs;
    int *inputs;            /* graph inputs that are not initializers */
    int *outputs;
    int *order;             /* topological order of node indices (n_nodes entries, dead included) */
    bool shapes_only;       /* set by the planner while an infer() only serves shape inference (its
                               params are discarded unrun): skip costly preparation such as packing
                               or transforming constant weights */
} oct_graph;

oct_graph *oct_graph_new(void);
void oct_graph_free(oct_graph *g);
/* Deep copy of structure; constant data is borrowed (data_owned=false). params are not copied. */
oct_graph *oct_graph_clone(const oct_graph *g, octet_error *err);

/* Adds a value, returns its index or -1 (no memory). name is copied. */
int oct_graph_add_value(oct_graph *g, const char *name, octet_error *err);
int oct_graph_find_value(const oct_graph *g, const char *name);
/* Adds a node with n_in inputs and n_out outputs (indices filled by caller), returns index or -1. */
int oct_graph_add_node(oct_graph *g, const char *name, const char *op_type, const char *domain,
                       int n_in, int n_out, octet_error *err);

/* Makes value v a constant owning `data` (which must come from malloc). */
void oct_value_set_const(oct_value *v, octet_dtype dtype, int rank, const int64_t *dims, void *data);
/* Ensures v owns its data (copies borrowed data), so a pass may modify it. Returns 0 or -1. */
int oct_value_make_owned(oct_value *v, octet_error *err);
/* Element count of a value with known shape; -1 on overflow/unknown. */
int64_t oct_value_numel(const oct_value *v);
/* Writes dims as "[2,3,4]" into buf (truncated to cap), for error messages. */
void oct_format_shape(char *buf, size_t cap, int rank, const int64_t *dims);
/* A tensor view of a constant value. */
oct_tensor oct_value_tensor(const oct_value *v);

/* Recomputes producer and n_consumers of every value from the live nodes. */
void oct_graph_update_uses(oct_graph *g);
/* Sorts live nodes topologically into g->order; fails on cycles or undefined inputs. */
int oct_graph_toposort(oct_graph *g, octet_error *err);

/* Attribute lookup; returns NULL when absent. */
const oct_attr *oct_node_attr(const oct_node *n, const char *name);
/* Typed getters with a default for absent attributes. */
int64_t oct_attr_int(const oct_node *n, const char *name, int64_t dflt);
float oct_attr_float(const oct_node *n, const char *name, float dflt);
const char *oct_attr_string(const oct_node *n, const char *name, const char *dflt);
/* Copies up to max ints into out; returns the count, or -1 if absent (or more than max:
   sets err and returns -2). */
int oct_attr_ints(const oct_node *n, const char *name, int64_t *out, int max, octet_error *err);

static inline bool oct_node_has_input(const oct_node *n, int i) {
    return i < n->n_in && n->in[i] >= 0;
}

#endif
