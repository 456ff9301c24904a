/* Keeping each weight resident once. Plans pack constant weights into their kernels' layouts
   (or fold BatchNorm into new ones) at plan time; the model's copy is then dead weight for as long
   as the session lives, which doubled resnet50's memory. Nodes say which inputs their run() never
   reads (oct_node.run_unread_inputs); after a plan is built, a model weight that no plan reads at
   run time is freed, and read back from the model file's mapping (whose pages are not resident)
   before the next plan is built. Models loaded from memory keep their weights. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "error.h"
#include "model.h"

/* Sessions hold the model const; the weight bookkeeping is its one mutable part. */
static pthread_mutex_t *weights_lock(const octet_model *m) {
    return (pthread_mutex_t *)&m->weights_lock;
}

/* A value whose bytes the model could free and read back. */
static int releasable(const octet_model *m, int v) {
    const oct_value *val = &m->graph->values[v];
    return m->map && m->sources[v].present && val->kind == OCT_VAL_CONST && val->data_owned &&
           m->sources[v].len == (size_t)oct_value_numel(val) * octet_dtype_size(val->dtype) &&
           m->sources[v].offset <= m->map_size && m->sources[v].len <= m->map_size - m->sources[v].offset;
}

static int read_back(const octet_model *m, octet_error *err) {
    for (int v = 0; v < m->graph->n_values; v++) {
        if (!m->released[v]) continue;
        void *data = oct_pb_slice_copy(m->map, &m->sources[v], 1);
        if (!data) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory reading weight '%s' back",
                                   m->graph->values[v].name);
        m->graph->values[v].data = data;
        m->released[v] = 0;
    }
    return 0;
}

/* Marks (in mark, one byte per model value) the model weights plan p reads at run time, right
   after p was built from the model's graph (every weight then in memory). */
static void weights_read(const octet_model *m, const oct_plan *p, unsigned char *mark) {
    const oct_graph *g = p->g, *mg = m->graph;
    const int nv = mg->n_values < g->n_values ? mg->n_values : g->n_values;
    memset(mark, 0, (size_t)mg->n_values);
    for (int i = 0; i < g->n_nodes; i++) {
        const oct_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->n_in; k++) {
            const int v = n->in[k];
            const int unread = k < 32 && (n->run_unread_inputs >> k & 1u);
            if (v >= 0 && v < nv && !unread && mg->values[v].data && g->values[v].data == mg->values[v].data)
                mark[v] = 1;
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const int v = g->outputs[i];
        if (v >= 0 && v < nv && mg->values[v].data && g->values[v].data == mg->values[v].data) mark[v] = 1;
    }
}

/* Frees weight v now if no plan pins it (the lock is held by oct_model_plan). */
static int release_one(const octet_model *m, int v) {
    if (m->keep_weights || m->pins[v] || !releasable(m, v)) return 0;
    oct_value *mv = &m->graph->values[v];
    free(mv->data);
    mv->data = NULL;
    m->released[v] = 1;
    return 1;
}

static int release_cb(void *ctx, int v) {
    return release_one(ctx, v);
}

oct_plan *oct_model_plan(const octet_model *m, const oct_shape *shapes, const octet_tensor *const *values, int batch,
                         uint64_t *needed, octet_error *err) {
    if (!m->map) return oct_plan_build(m->graph, shapes, values, batch, needed, err);
    pthread_mutex_lock(weights_lock(m));
    oct_plan *p = NULL;
    unsigned char *mark = malloc((size_t)m->graph->n_values + 1);
    if (!mark) oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    else if (!read_back(m, err)) {
        const oct_weight_releaser rel = {release_cb, (void *)m};
        p = oct_plan_build_releasing(m->graph, shapes, values, batch, needed, &rel, err);
    }
    if (p) {
        weights_read(m, p, mark);
        for (int v = 0; v < m->graph->n_values; v++) m->pins[v] += mark[v];
        p->pinned = mark;
        mark = NULL;
        /* what the passes replaced (BatchNorm folded into new weights) goes too */
        for (int v = 0; v < m->graph->n_values; v++) {
            const void *data = m->graph->values[v].data;
            /* the new plan borrowed the pointer; it never reads it, and must not keep it dangling */
            if (release_one(m, v) && v < p->g->n_values && p->g->values[v].data == data) p->g->values[v].data = NULL;
        }
    }
    free(mark);
    pthread_mutex_unlock(weights_lock(m));
    return p;
}

int oct_model_keep_weights(const octet_model *m, octet_error *err) {
    if (!m->map) return 0;
    pthread_mutex_lock(weights_lock(m));
    int rc = read_back(m, err);
    if (!rc) ((octet_model *)m)->keep_weights = true;
    pthread_mutex_unlock(weights_lock(m));
    return rc;
}

void oct_model_plan_free(const octet_model *m, oct_plan *p) {
    if (!p) return;
    if (m->map && p->pinned) {
        pthread_mutex_lock(weights_lock(m));
        for (int v = 0; v < m->graph->n_values; v++) m->pins[v] -= p->pinned[v];
        pthread_mutex_unlock(weights_lock(m));
    }
    oct_plan_free(p);
}

void oct_model_weights_free(octet_model *m) {
    if (m->map) munmap((void *)m->map, m->map_size);
    free(m->sources);
    free(m->pins);
    free(m->released);
    pthread_mutex_destroy(&m->weights_lock);
}
