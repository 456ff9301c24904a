/* Memory plan: every activation and every node workspace gets an offset in one arena.
   Lifetimes are intervals of execution steps; buffers are placed largest first at the lowest offset
   that does not overlap any placed buffer whose lifetime intersects ("greedy by size", as in
   TFLite's planner). Graph outputs are not in the arena: the caller receives them.

   Concat elision: when every dim before a Concat's axis is 1, each input is one contiguous block
   of the output, so the input's producer can write straight into that block. Such inputs are
   views: they get no buffer of their own, the output's buffer lives from the first of them, and
   the Concat finds its inputs already in place (concat.c skips those copies). This saves the
   copy and, at the peak of a U-Net decoder, the inputs' memory (113 MB at 96^3). */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "plan.h"

#define ARENA_ALIGN 64

typedef struct {
    size_t size, offset;
    int first, last;   /* execution steps, inclusive */
    size_t *target;    /* where to store the offset */
} buffer;

static int by_size_desc(const void *a, const void *b) {
    const buffer *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->first - y->first;
}

static int by_offset(const void *a, const void *b) {
    const buffer *x = *(const buffer *const *)a, *y = *(const buffer *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static size_t align_up(size_t n) {
    return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

/* The byte offset of input i's block in a Concat's output, or -1 when the Concat is not an
   elision candidate (some dim before the axis is not 1) or the block is not arena-aligned. */
static int64_t concat_block_offset(const oct_graph *g, const oct_node *n, int i) {
    const oct_value *y = &g->values[n->out[0]];
    const oct_attr *a = oct_node_attr(n, "axis");
    int64_t axis = a ? a->i : 1;
    if (axis < 0) axis += y->rank;
    if (axis < 0 || axis >= y->rank) return -1;
    for (int d = 0; d < axis; d++)
        if (y->dims[d] != 1) return -1;
    size_t off = 0;
    for (int k = 0; k < i; k++) off += (size_t)oct_value_numel(&g->values[n->in[k]]) * octet_dtype_size(y->dtype);
    return off % ARENA_ALIGN ? -1 : (int64_t)off;
}

/* Marks the Concat inputs that become views (view_of[v] = the output value, view_off[v] = the
   byte offset) and widens the outputs' lifetimes to cover them. An input stays a buffer of its own
   when it is not an arena activation, is a graph output, appears twice in the Concat, is already
   a view, or hosts views itself (nested Concats copy once). */
static void plan_concat_views(const oct_plan *p, int *first, int *last, int *view_of, size_t *view_off,
                              bool *hosts) {
    const oct_graph *g = p->g;
    for (int s = 0; s < p->n_exec; s++) {
        const oct_node *n = &g->nodes[p->exec[s]];
        if (strcmp(n->op_type, "Concat") != 0 || n->domain[0] || n->n_out != 1 || n->out[0] < 0) continue;
        const int y = n->out[0];
        const oct_value *yv = &g->values[y];
        if (yv->kind != OCT_VAL_ACTIVATION || yv->is_output || view_of[y] >= 0) continue;
        for (int i = 0; i < n->n_in; i++) {
            const int v = n->in[i];
            const oct_value *x = &g->values[v];
            if (x->kind != OCT_VAL_ACTIVATION || x->is_output || first[v] < 0 || view_of[v] >= 0 || hosts[v])
                continue;
            bool repeated = false;
            for (int k = 0; k < n->n_in; k++) repeated |= k != i && n->in[k] == v;
            const int64_t off = concat_block_offset(g, n, i);
            if (repeated || off < 0) continue;
            view_of[v] = y;
            view_off[v] = (size_t)off;
            hosts[y] = true;
            if (first[v] < first[y]) first[y] = first[v];
            if (last[v] > last[y]) last[y] = last[v];
        }
    }
}

int oct_plan_memory(oct_plan *p, octet_error *err) {
    oct_graph *g = p->g;
    int *first = malloc(((size_t)g->n_values + 1) * sizeof(int));
    int *last = malloc(((size_t)g->n_values + 1) * sizeof(int));
    buffer *bufs = calloc((size_t)g->n_values + (size_t)p->n_exec + 1, sizeof(buffer));
    buffer **placed = calloc((size_t)g->n_values + (size_t)p->n_exec + 1, sizeof(buffer *));
    int *view_of = malloc(((size_t)g->n_values + 1) * sizeof(int));
    size_t *view_off = calloc((size_t)g->n_values + 1, sizeof(size_t));
    bool *hosts = calloc((size_t)g->n_values + 1, sizeof(bool));
    int rc = -1;
    if (!first || !last || !bufs || !placed || !view_of || !view_off || !hosts) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory planning memory");
        goto done;
    }
    for (int v = 0; v < g->n_values; v++) {
        first[v] = -1;
        last[v] = -1;
        view_of[v] = -1;
        g->values[v].planned = false;
    }
    for (int s = 0; s < p->n_exec; s++) {
        const oct_node *n = &g->nodes[p->exec[s]];
        for (int j = 0; j < n->n_out; j++)
            if (n->out[j] >= 0 && first[n->out[j]] < 0) first[n->out[j]] = last[n->out[j]] = s;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0) last[n->in[j]] = s;
        if (n->epi.residual >= 0) last[n->epi.residual] = s;
    }
    plan_concat_views(p, first, last, view_of, view_off, hosts);
    int nb = 0;
    for (int v = 0; v < g->n_values; v++) {
        oct_value *val = &g->values[v];
        if (val->kind != OCT_VAL_ACTIVATION || val->is_output || first[v] < 0 || view_of[v] >= 0) continue;
        int64_t numel = oct_value_numel(val);
        bufs[nb] = (buffer){align_up((size_t)(numel > 0 ? numel : 0) * octet_dtype_size(val->dtype)), 0,
                            first[v], last[v], &val->arena_offset};
        val->planned = true;
        nb++;
    }
    for (int s = 0; s < p->n_exec; s++) {
        oct_node *n = &g->nodes[p->exec[s]];
        if (!n->workspace_bytes) continue;
        bufs[nb++] = (buffer){align_up(n->workspace_bytes), 0, s, s, &n->workspace_offset};
    }
    qsort(bufs, (size_t)nb, sizeof *bufs, by_size_desc);
    size_t arena = 0;
    int np = 0;
    for (int i = 0; i < nb; i++) {
        buffer *b = &bufs[i];
        /* placed[] is kept sorted by offset; scan the gaps between live neighbours. */
        size_t offset = 0;
        for (int k = 0; k < np; k++) {
            const buffer *o = placed[k];
            if (o->last < b->first || o->first > b->last) continue;
            if (o->offset >= offset + b->size) break;
            if (o->offset + o->size > offset) offset = o->offset + o->size;
        }
        b->offset = offset;
        *b->target = offset;
        if (offset + b->size > arena) arena = offset + b->size;
        placed[np++] = b;
        qsort(placed, (size_t)np, sizeof *placed, by_offset);
    }
    for (int v = 0; v < g->n_values; v++) {
        if (view_of[v] < 0) continue;
        g->values[v].arena_offset = g->values[view_of[v]].arena_offset + view_off[v];
        g->values[v].planned = true;
    }
    p->arena_bytes = arena;
    rc = 0;
done:
    free(view_of);
    free(view_off);
    free(hosts);
    free(first);
    free(last);
    free(bufs);
    free(placed);
    return rc;
}
