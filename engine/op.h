/* The operator interface. Each op is one `oct_op` in engine/ops/<family>/; the registry
   (engine/ops/registry.c) finds it by (domain, op_type).

   Lifecycle, per plan:
   1. infer(): every input value has a known dtype and static shape; constant inputs have data.
      infer validates attributes and inputs, sets dtype/rank/dims of every output value, may store
      parsed attributes in n->params (freed by free_params) and may set n->workspace_bytes.
      Errors name the problem; the caller adds the node name.
   2. If every input is constant (or the op has OCT_OP_SHAPE_ONLY), the planner runs the op once at
      load time and the outputs become constants (constant folding).
   3. run(): called once per inference with all tensors bound. Must not keep state between runs
      (sessions run concurrently) and must not allocate large buffers: use the workspace. */
#ifndef OCT_OP_H
#define OCT_OP_H

#include "error.h"
#include "graph.h"

typedef struct oct_run_ctx {
    const oct_graph *g;
    oct_tensor *tensors;  /* one per value, bound for this run (data may be NULL for unused ones) */
    void *workspace;      /* n->workspace_bytes of scratch for the node being run */
    int threads;          /* OpenMP threads the op may use */
    struct oct_team *team; /* the run's team while the node runs in one (engine/team.h), else NULL */
} oct_run_ctx;

enum {
    OCT_OP_NO_FOLD = 1u << 0,    /* never constant-fold (e.g. random ops) */
    OCT_OP_SHAPE_ONLY = 1u << 1, /* the output depends only on input shapes (Shape): fold always */
    OCT_OP_TEAM = 1u << 2        /* run splits work only through oct_parallel (engine/team.h) */
};

typedef struct oct_op {
    const char *domain;   /* "" or "com.microsoft" */
    const char *type;
    unsigned flags;
    int (*infer)(oct_graph *g, oct_node *n, octet_error *err);
    int (*run)(const oct_run_ctx *ctx, const oct_node *n, octet_error *err);
    void (*free_params)(void *params); /* NULL: free() */
} oct_op;

/* Registry: NULL-terminated lists, one per op family. */
extern const oct_op *const oct_ops_math[];
extern const oct_op *const oct_ops_tensor[];
extern const oct_op *const oct_ops_nn[];
extern const oct_op *const oct_ops_quant[];
const oct_op *oct_op_find(const char *domain, const char *type);

/* Helpers for ops. */
static inline oct_tensor *oct_in(const oct_run_ctx *c, const oct_node *n, int i) {
    return &c->tensors[n->in[i]];
}
static inline oct_tensor *oct_out(const oct_run_ctx *c, const oct_node *n, int i) {
    return &c->tensors[n->out[i]];
}
static inline oct_value *oct_in_val(oct_graph *g, const oct_node *n, int i) {
    return &g->values[n->in[i]];
}
static inline oct_value *oct_out_val(oct_graph *g, const oct_node *n, int i) {
    return &g->values[n->out[i]];
}
/* Sets an output's dtype and shape. */
void oct_set_output(oct_graph *g, const oct_node *n, int i, octet_dtype dtype, int rank,
                    const int64_t *dims);
/* Checks input count (min..max present slots) and that required inputs exist. */
int oct_check_inputs(const oct_node *n, int min, int max, octet_error *err);
/* Returns input i as a constant value, or NULL with err set. When the input is a graph input, it is
   marked value_needed: the session then plans with that input's run-time values bound as constants
   (one plan per distinct value), which is how node tests feed shapes, axes and scales. */
const oct_value *oct_const_input(oct_graph *g, const oct_node *n, int i, octet_error *err);
/* Reads a constant integer tensor (int64 or int32) input into out[max]; returns the element count,
   or -1 with err set if the input is not a constant or has more than max elements. */
int oct_const_ints(oct_graph *g, const oct_node *n, int i, int64_t *out, int max, octet_error *err);
/* Normalises an axis in [-rank, rank-1] to [0, rank-1]; -1 with err set when out of range. */
int oct_norm_axis(int64_t axis, int rank, int64_t *out, octet_error *err);
/* numpy broadcast of two shapes; returns 0 or -1 with err set. */
int oct_broadcast_shape(int ra, const int64_t *da, int rb, const int64_t *db, int *rout,
                        int64_t *dout, octet_error *err);

#endif
