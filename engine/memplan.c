/* Memory plan: every activation and every node workspace gets an offset in one arena.
   Lifetimes are intervals of execution steps; buffers are placed largest first at the lowest offset
   that does not overlap any placed buffer whose lifetime intersects ("greedy by size", as in
   TFLite's planner). Graph outputs are not in the arena: the caller receives them. */
#include <stdlib.h>

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

int oct_plan_memory(oct_plan *p, octet_error *err) {
    oct_graph *g = p->g;
    int *first = malloc(((size_t)g->n_values + 1) * sizeof(int));
    int *last = malloc(((size_t)g->n_values + 1) * sizeof(int));
    buffer *bufs = calloc((size_t)g->n_values + (size_t)p->n_exec + 1, sizeof(buffer));
    buffer **placed = calloc((size_t)g->n_values + (size_t)p->n_exec + 1, sizeof(buffer *));
    int rc = -1;
    if (!first || !last || !bufs || !placed) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory planning memory");
        goto done;
    }
    for (int v = 0; v < g->n_values; v++) {
        first[v] = -1;
        last[v] = -1;
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
    int nb = 0;
    for (int v = 0; v < g->n_values; v++) {
        oct_value *val = &g->values[v];
        if (val->kind != OCT_VAL_ACTIVATION || val->is_output || first[v] < 0) continue;
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
    p->arena_bytes = arena;
    rc = 0;
done:
    free(first);
    free(last);
    free(bufs);
    free(placed);
    return rc;
}
