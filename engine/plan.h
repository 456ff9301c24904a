/* An executable plan: the model graph specialised to fixed input shapes, after shape inference,
   constant folding, fusion and dead-node removal, with every activation placed in one arena. */
#ifndef OCT_PLAN_H
#define OCT_PLAN_H

#include <stddef.h>

#include "graph.h"

typedef struct {
    int rank;
    int64_t dims[OCTET_MAX_RANK];
} oct_shape;

typedef struct oct_plan {
    oct_graph *g;
    int *exec;            /* node indices in execution order */
    int n_exec;
    oct_shape *input_shapes; /* one per graph input, what this plan was built for */
    size_t arena_bytes;
    size_t weight_bytes;  /* constants read by executed nodes */
    size_t io_bytes;      /* graph inputs and outputs */
    size_t peak_bytes;    /* arena + weights + io + per-run bookkeeping */
    unsigned char *pinned; /* per model value: this plan reads the model's bytes at run time
                              (model_weights.c; NULL for plans built outside a session) */
} oct_plan;

/* Builds a plan. shapes (one per graph input, or NULL) fixes every input dim; inputs without a shape
   take the model's dims with a symbolic first dim set to batch. values (one per graph input, or NULL)
   binds the inputs whose values shape inference needs: they become constants of this plan.
   On failure, *needed (if not NULL) receives the bit mask of graph inputs whose values were needed
   but not bound, so that the caller may retry with them bound. */
oct_plan *oct_plan_build(const oct_graph *model, const oct_shape *shapes, const octet_tensor *const *values,
                         int batch, uint64_t *needed, octet_error *err);
void oct_plan_free(oct_plan *p);

/* Offered a model weight (value index) that the plan being built no longer needs in memory:
   returns 1 if it freed the bytes (the plan then drops its borrowed pointer), 0 to keep them. */
typedef struct {
    int (*release)(void *ctx, int value);
    void *ctx;
} oct_weight_releaser;
/* oct_plan_build with a releaser (model_weights.c); rel may be NULL. */
oct_plan *oct_plan_build_releasing(const oct_graph *model, const oct_shape *shapes, const octet_tensor *const *values,
                                   int batch, uint64_t *needed, const oct_weight_releaser *rel, octet_error *err);

/* Places activations and node workspaces in one arena (memplan.c). */
int oct_plan_memory(oct_plan *p, octet_error *err);

#endif
