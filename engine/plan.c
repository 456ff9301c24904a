/* Plan building: fix input shapes, infer shapes node by node, fold constants, run the passes,
   drop dead nodes, then plan memory. */
#include "plan.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "op.h"
#include "passes/passes.h"

/* A single tensor larger than this is refused: it would not fit the devices octet targets. */
#define OCT_MAX_TENSOR_BYTES ((size_t)16 << 30)

void oct_plan_free(oct_plan *p) {
    if (!p) return;
    free(p->pinned);
    oct_graph_free(p->g);
    free(p->exec);
    free(p->input_shapes);
    free(p);
}

static int value_bytes(const oct_value *v, size_t *bytes, octet_error *err) {
    int64_t n = oct_value_numel(v);
    size_t es = octet_dtype_size(v->dtype);
    if (n < 0 || es == 0 || (uint64_t)n > OCT_MAX_TENSOR_BYTES / es)
        return oct_fail(err, OCTET_ERR_SHAPE, "tensor '%s' has an invalid or too large shape", v->name);
    *bytes = (size_t)n * es;
    return 0;
}

/* Makes graph input v a constant holding a copy of the caller's values. */
static int bind_value(oct_value *v, const octet_tensor *t, octet_error *err) {
    if (t->dtype != v->dtype)
        return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' must be %s, got %s", v->name,
                        octet_dtype_name(v->dtype), octet_dtype_name(t->dtype));
    int64_t n = octet_tensor_numel(t);
    size_t bytes = (size_t)(n > 0 ? n : 0) * octet_dtype_size(t->dtype);
    void *copy = malloc(bytes + 1);
    if (!copy) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory binding input '%s'", v->name);
    if (bytes) memcpy(copy, t->data, bytes);
    oct_value_set_const(v, t->dtype, t->rank, t->dims, copy);
    return 0;
}

static int fix_input_shapes(oct_plan *p, const oct_shape *shapes, const octet_tensor *const *values,
                            int batch, octet_error *err) {
    oct_graph *g = p->g;
    p->input_shapes = calloc((size_t)g->n_inputs + 1, sizeof(oct_shape));
    if (!p->input_shapes) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->n_inputs; i++) {
        oct_value *v = &g->values[g->inputs[i]];
        if (shapes && shapes[i].rank >= 0) {
            if (v->rank >= 0 && shapes[i].rank != v->rank)
                return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' has rank %d, the model expects rank %d",
                                v->name, shapes[i].rank, v->rank);
            for (int d = 0; d < shapes[i].rank; d++) {
                if (v->rank >= 0 && v->dims[d] >= 0 && v->dims[d] != shapes[i].dims[d] && !v->dim_params[d])
                    return oct_fail(err, OCTET_ERR_SHAPE,
                                    "input '%s' dim %d is %lld, the model expects %lld", v->name, d,
                                    (long long)shapes[i].dims[d], (long long)v->dims[d]);
                if (shapes[i].dims[d] < 0)
                    return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' dim %d is negative", v->name, d);
                v->dims[d] = shapes[i].dims[d];
            }
            v->rank = shapes[i].rank;
        } else {
            if (v->rank < 0)
                return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' has no shape in the model; give one",
                                v->name);
            for (int d = 0; d < v->rank; d++) {
                if (v->dims[d] >= 0 && !v->dim_params[d]) continue;
                if (d != 0)
                    return oct_fail(err, OCTET_ERR_SHAPE,
                                    "input '%s' dim %d is symbolic ('%s'); pass an input to fix it",
                                    v->name, d, v->dim_params[d] ? v->dim_params[d] : "?");
                v->dims[d] = batch;
            }
        }
        if (v->dtype == 0)
            return oct_fail(err, OCTET_ERR_FORMAT, "input '%s' has no element type", v->name);
        p->input_shapes[i].rank = v->rank;
        memcpy(p->input_shapes[i].dims, v->dims, sizeof v->dims);
        if (values && values[i] && bind_value(v, values[i], err)) return -1;
    }
    return 0;
}

static bool node_is_foldable(const oct_graph *g, const oct_node *n) {
    if (n->op->flags & OCT_OP_NO_FOLD) return false;
    if (n->op->flags & OCT_OP_SHAPE_ONLY) return true;
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] >= 0 && g->values[n->in[i]].kind != OCT_VAL_CONST) return false;
    return true;
}

/* Runs a node whose inputs are all known now; its outputs become constants. */
static int fold_node(oct_graph *g, oct_node *n, octet_error *err) {
    oct_tensor *t = calloc((size_t)g->n_values, sizeof *t);
    void *ws = n->workspace_bytes ? malloc(n->workspace_bytes) : NULL;
    int rc = -1;
    if (!t || (n->workspace_bytes && !ws)) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory folding constants");
        goto done;
    }
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] >= 0) t[n->in[i]] = oct_value_tensor(&g->values[n->in[i]]);
    for (int i = 0; i < n->n_out; i++) {
        if (n->out[i] < 0) continue;
        oct_value *v = &g->values[n->out[i]];
        size_t bytes = 0;
        if (value_bytes(v, &bytes, err)) goto done;
        t[n->out[i]] = oct_value_tensor(v);
        t[n->out[i]].data = calloc(1, bytes ? bytes : 1);
        if (!t[n->out[i]].data) {
            oct_fail(err, OCTET_ERR_NOMEM, "out of memory folding constants");
            goto done;
        }
    }
    oct_run_ctx ctx = {g, t, ws, 1, NULL};
    if (n->op->run(&ctx, n, err)) goto done;
    for (int i = 0; i < n->n_out; i++) {
        if (n->out[i] < 0) continue;
        oct_value *v = &g->values[n->out[i]];
        oct_value_set_const(v, v->dtype, v->rank, v->dims, t[n->out[i]].data);
        t[n->out[i]].data = NULL;
    }
    n->dead = true;
    rc = 0;
done:
    for (int i = 0; t && i < n->n_out; i++)
        if (n->out[i] >= 0) free(t[n->out[i]].data);
    free(t);
    free(ws);
    return rc;
}

static int resolve_op(oct_node *n, octet_error *err) {
    if (!n->op) {
        n->op = oct_op_find(n->domain, n->op_type);
        if (!n->op)
            return oct_fail(err, OCTET_ERR_UNSUPPORTED, "node '%s': operator %s%s%s is not supported",
                            n->name, n->domain[0] ? n->domain : "", n->domain[0] ? "." : "", n->op_type);
    }
    return 0;
}

static int infer_node(oct_graph *g, oct_node *n, octet_error *err) {
    if (resolve_op(n, err)) return -1;
    for (int i = 0; i < n->n_in; i++) {
        if (n->in[i] < 0) continue;
        const oct_value *v = &g->values[n->in[i]];
        if (v->dtype == 0 || v->rank < 0)
            return oct_fail(err, OCTET_ERR_SHAPE, "node '%s' (%s): input '%s' has no known type or shape",
                            n->name, n->op_type, v->name);
    }
    if (n->params) {
        if (n->op->free_params) n->op->free_params(n->params);
        else free(n->params);
        n->params = NULL;
    }
    n->workspace_bytes = 0;
    n->run_unread_inputs = 0;
    if (n->op->infer(g, n, err))
        return oct_fail_context(err, "node '%s' (%s)", n->name, n->op_type);
    for (int i = 0; i < n->n_out; i++) {
        if (n->out[i] < 0) continue;
        const oct_value *v = &g->values[n->out[i]];
        size_t bytes = 0;
        if (v->dtype == 0 || v->rank < 0)
            return oct_fail(err, OCTET_ERR_INTERNAL, "node '%s' (%s): output '%s' was not inferred",
                            n->name, n->op_type, v->name);
        if (value_bytes(v, &bytes, err))
            return oct_fail_context(err, "node '%s' (%s)", n->name, n->op_type);
    }
    return 0;
}

/* keep_dq: leave DequantizeLinear of constants unfolded (counted in *kept), so that the QDQ
   lowering still sees int8 weights and their scales rather than folded fp32 copies. */
static int infer_and_fold(oct_graph *g, bool keep_dq, int *kept, octet_error *err) {
    if (oct_graph_toposort(g, err)) return -1;
    for (int k = 0; k < g->n_nodes; k++) {
        oct_node *n = &g->nodes[g->order[k]];
        if (n->dead) continue;
        /* Params of a node that is not folded now are rebuilt by the final infer: shapes suffice. */
        if (resolve_op(n, err)) return -1;
        const bool foldable = node_is_foldable(g, n);
        g->shapes_only = !foldable;
        const int rc = infer_node(g, n, err);
        g->shapes_only = false;
        if (rc) return -1;
        if (!foldable) continue;
        if (keep_dq && !n->domain[0] && strcmp(n->op_type, "DequantizeLinear") == 0) {
            (*kept)++;
            continue;
        }
        if (fold_node(g, n, err)) return oct_fail_context(err, "folding node '%s' (%s)", n->name, n->op_type);
    }
    return 0;
}

/* Marks nodes dead whose outputs nobody reads, until nothing changes. */
static void remove_dead_nodes(oct_graph *g) {
    bool changed = true;
    while (changed) {
        changed = false;
        oct_graph_update_uses(g);
        for (int i = 0; i < g->n_nodes; i++) {
            oct_node *n = &g->nodes[i];
            if (n->dead) continue;
            bool used = false;
            for (int j = 0; j < n->n_out && !used; j++) {
                if (n->out[j] < 0) continue;
                const oct_value *v = &g->values[n->out[j]];
                used = v->n_consumers > 0 || v->is_output;
            }
            if (!used) {
                n->dead = true;
                changed = true;
            }
        }
    }
}

static int collect_exec(oct_plan *p, octet_error *err) {
    oct_graph *g = p->g;
    if (oct_graph_toposort(g, err)) return -1;
    p->exec = malloc(((size_t)g->n_nodes + 1) * sizeof(int));
    if (!p->exec) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    p->n_exec = 0;
    for (int k = 0; k < g->n_nodes; k++)
        if (!g->nodes[g->order[k]].dead) p->exec[p->n_exec++] = g->order[k];
    return 0;
}

static void count_bytes(oct_plan *p) {
    oct_graph *g = p->g;
    oct_graph_update_uses(g);
    p->weight_bytes = 0;
    p->io_bytes = 0;
    for (int i = 0; i < g->n_values; i++) {
        const oct_value *v = &g->values[i];
        size_t bytes = 0;
        if (v->rank < 0 || value_bytes(v, &bytes, NULL)) continue;
        if (v->kind == OCT_VAL_CONST && (v->n_consumers > 0 || v->is_output)) p->weight_bytes += bytes;
        else if (v->kind == OCT_VAL_INPUT || v->is_output) p->io_bytes += bytes;
    }
    p->peak_bytes = p->arena_bytes + p->weight_bytes + p->io_bytes +
                    (size_t)g->n_values * sizeof(oct_tensor);
}

/* Graph inputs whose values an op asked for while they were not bound. */
static uint64_t needed_inputs(const oct_graph *g) {
    uint64_t mask = 0;
    for (int i = 0; i < g->n_inputs && i < 64; i++)
        if (g->values[g->inputs[i]].value_needed && g->values[g->inputs[i]].kind == OCT_VAL_INPUT)
            mask |= (uint64_t)1 << i;
    return mask;
}

oct_plan *oct_plan_build(const oct_graph *model, const oct_shape *shapes, const octet_tensor *const *values,
                         int batch, uint64_t *needed, octet_error *err) {
    return oct_plan_build_releasing(model, shapes, values, batch, needed, NULL, err);
}

/* The final infer of every live node; with a releaser, a constant whose readers have all been
   inferred and none reads it at run time (they packed it) goes at once, so that packed copies and
   originals do not pile up over the whole plan: a model weight is offered to the releaser, a
   constant the plan owns (folded BatchNorm weights, other pass results) is freed. */
static int final_infer(const oct_graph *model, oct_plan *p, const oct_weight_releaser *rel, octet_error *err) {
    oct_graph *g = p->g;
    int *uses = NULL;
    unsigned char *read = NULL;
    const int nmv = model->n_values, nv = g->n_values;
    if (rel && nv > 0) {
        uses = calloc((size_t)nv, sizeof *uses);
        read = calloc((size_t)nv, 1);
        if (!uses || !read) rel = NULL; /* then nothing is released early: correct, only larger */
    }
    for (int k = 0; rel && k < g->n_nodes; k++) {
        const oct_node *n = &g->nodes[k];
        for (int i = 0; !n->dead && i < n->n_in; i++)
            if (n->in[i] >= 0 && n->in[i] < nv) uses[n->in[i]]++;
    }
    for (int i = 0; rel && i < g->n_outputs; i++)
        if (g->outputs[i] >= 0 && g->outputs[i] < nv) read[g->outputs[i]] = 1;
    int rc = 0;
    for (int k = 0; k < g->n_nodes && !rc; k++) {
        oct_node *n = &g->nodes[g->order[k]];
        if (n->dead) continue;
        if (infer_node(g, n, err)) {
            rc = -1;
            break;
        }
        for (int i = 0; rel && i < n->n_in; i++) {
            const int v = n->in[i];
            if (v < 0 || v >= nv) continue;
            if (!(i < 32 && (n->run_unread_inputs >> i & 1u))) read[v] = 1;
            oct_value *val = &g->values[v];
            if (--uses[v] != 0 || read[v] || val->kind != OCT_VAL_CONST || !val->data) continue;
            if (val->data_owned) {
                free(val->data);
                val->data = NULL;
            } else if (v < nmv && val->data == model->values[v].data && rel->release(rel->ctx, v)) {
                val->data = NULL;
            }
        }
    }
    free(uses);
    free(read);
    return rc;
}

oct_plan *oct_plan_build_releasing(const oct_graph *model, const oct_shape *shapes, const octet_tensor *const *values,
                                   int batch, uint64_t *needed, const oct_weight_releaser *rel, octet_error *err) {
    if (needed) *needed = 0;
    oct_plan *p = calloc(1, sizeof *p);
    if (!p) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        return NULL;
    }
    /* QDQ models: the first sweep folds everything except DequantizeLinear of constants; the QDQ
       lowering turns DQ->op->Q patterns into int8 nodes; a second sweep then folds what is left
       (DQ of weights feeding fp32 fallback nodes) before the fp32 fusion, which needs fp32 weights. */
    const bool lower = oct_pass_qdq_enabled();
    int kept_dq = 0, lowered = 0;
    p->g = oct_graph_clone(model, err);
    if (!p->g || fix_input_shapes(p, shapes, values, batch > 0 ? batch : 1, err) ||
        infer_and_fold(p->g, lower, &kept_dq, err))
        goto fail;
    oct_graph_update_uses(p->g);
    if ((lowered = oct_pass_qdq_lower(p->g, err)) < 0) goto fail;
    if (kept_dq || lowered) {
        remove_dead_nodes(p->g);
        if (infer_and_fold(p->g, false, &kept_dq, err)) goto fail;
        oct_graph_update_uses(p->g);
    }
    if (oct_pass_fuse(p->g, err) || oct_pass_fuse_qlut(p->g, err) || oct_pass_fuse_se(p->g, err)) goto fail;
    remove_dead_nodes(p->g);
    /* Passes rewrote nodes: infer again so every op's params match its final inputs. */
    if (oct_graph_toposort(p->g, err) || final_infer(model, p, rel, err)) goto fail;
    for (int i = 0; i < p->g->n_outputs; i++) {
        const oct_value *v = &p->g->values[p->g->outputs[i]];
        if (v->dtype == 0 || v->rank < 0) {
            oct_fail(err, OCTET_ERR_FORMAT, "graph output '%s' is not produced by any node", v->name);
            goto fail;
        }
    }
    if (collect_exec(p, err) || oct_plan_memory(p, err)) goto fail;
    count_bytes(p);
    return p;
fail:
    if (needed && p->g) *needed = needed_inputs(p->g);
    oct_plan_free(p);
    return NULL;
}
