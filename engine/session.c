/* Sessions: a plan per distinct input shape (built on demand), arenas pooled per plan so that
   concurrent runs each get their own, and the run loop. */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "affinity.h"
#include "bigmem.h"
#include "error.h"
#include "kernels.h"
#include "model.h"
#include "op.h"
#include "plan.h"
#include "profile.h"
#include "team.h"

#define MAX_PLANS 8

typedef struct arena {
    struct arena *next;
    void *mem;
} arena;

typedef struct {
    oct_plan *plan;
    arena *free_arenas; /* idle arenas of this plan */
} plan_slot;

struct octet_session {
    const octet_model *model;
    int threads;
    int batch;
    int pin_threads;
    int teams; /* run stretches of OCT_OP_TEAM nodes on one team (engine/team.h) */
    pthread_mutex_t lock;
    plan_slot plans[MAX_PLANS];
    int n_plans;
    uint64_t value_inputs; /* graph inputs whose values shape inference needs (plan per value) */
};

const char *octet_version(void) {
    return "0.1.0";
}

const char *octet_kernel_set(void) {
    return oct_isa_name(oct_kernels()->isa);
}

static void free_arenas(arena *a) {
    while (a) {
        arena *next = a->next;
        free(a->mem);
        free(a);
        a = next;
    }
}

/* OCTET_NO_TEAM=1 in the environment: every node gets its own OpenMP region (for A/B timing and
   for tests that compare the two). */
static int no_team(void) {
    const char *v = getenv("OCTET_NO_TEAM");
    return v && v[0] == '1';
}

octet_session *octet_session_create(const octet_model *model, const octet_session_options *opts,
                                    octet_error *err) {
    if (!model || !model->graph) {
        oct_fail(err, OCTET_ERR_ARG, "no model");
        return NULL;
    }
    octet_session *s = calloc(1, sizeof *s);
    if (!s) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->model = model;
    s->threads = opts && opts->threads > 0 ? opts->threads : omp_get_max_threads();
    s->batch = opts && opts->batch > 0 ? opts->batch : 1;
    s->pin_threads = opts && opts->pin_threads;
    s->teams = !no_team();
    pthread_mutex_init(&s->lock, NULL);
    if (model->graph->n_inputs > 64) {
        oct_fail(err, OCTET_ERR_UNSUPPORTED, "more than 64 graph inputs");
        goto fail;
    }
    uint64_t needed = 0;
    s->plans[0].plan = oct_model_plan(model, NULL, NULL, s->batch, &needed, err);
    if (s->plans[0].plan) s->n_plans = 1;
    else if (needed) s->value_inputs = needed; /* planned at the first run, with those values */
    else goto fail;
    return s;
fail:
    pthread_mutex_destroy(&s->lock);
    free(s);
    return NULL;
}

void octet_session_free(octet_session *s) {
    if (!s) return;
    for (int i = 0; i < s->n_plans; i++) {
        free_arenas(s->plans[i].free_arenas);
        oct_model_plan_free(s->model, s->plans[i].plan);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* The first plan, or NULL while planning waits for input values. */
static const oct_plan *main_plan(const octet_session *s) {
    return s->n_plans ? s->plans[0].plan : NULL;
}

/* The planned graph when there is one (fixed shapes), else the model's. */
static const oct_graph *info_graph(const octet_session *s) {
    return s->n_plans ? s->plans[0].plan->g : s->model->graph;
}

int octet_session_input_count(const octet_session *s) {
    return s ? info_graph(s)->n_inputs : 0;
}

int octet_session_output_count(const octet_session *s) {
    return s ? info_graph(s)->n_outputs : 0;
}

static int value_info(const oct_value *v, const char **name, octet_dtype *dtype, int *rank,
                      int64_t dims[OCTET_MAX_RANK]) {
    if (name) *name = v->name;
    if (dtype) *dtype = v->dtype;
    if (rank) *rank = v->rank;
    if (dims)
        for (int d = 0; d < v->rank; d++) dims[d] = v->dims[d];
    return 0;
}

int octet_session_input_info(const octet_session *s, int i, const char **name, octet_dtype *dtype,
                             int *rank, int64_t dims[OCTET_MAX_RANK]) {
    if (!s || i < 0 || i >= octet_session_input_count(s)) return -1;
    const oct_graph *g = info_graph(s);
    return value_info(&g->values[g->inputs[i]], name, dtype, rank, dims);
}

int octet_session_output_info(const octet_session *s, int i, const char **name, octet_dtype *dtype,
                              int *rank, int64_t dims[OCTET_MAX_RANK]) {
    if (!s || i < 0 || i >= octet_session_output_count(s)) return -1;
    const oct_graph *g = info_graph(s);
    return value_info(&g->values[g->outputs[i]], name, dtype, rank, dims);
}

int octet_session_plan_stats(const octet_session *s, octet_plan_stats *st) {
    const oct_plan *p = s ? main_plan(s) : NULL;
    if (!p || !st) return -1;
    st->arena_bytes = p->arena_bytes;
    st->weight_bytes = p->weight_bytes;
    st->peak_bytes = p->peak_bytes;
    st->nodes = p->n_exec;
    return 0;
}

static bool shape_matches(const oct_shape *a, const octet_tensor *t) {
    if (a->rank != t->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != t->dims[d]) return false;
    return true;
}

/* A plan fits these inputs when the shapes match and every input it bound has the same values. */
static bool plan_fits(const oct_plan *p, const octet_tensor *const *in) {
    const oct_graph *g = p->g;
    for (int i = 0; i < g->n_inputs; i++) {
        if (!shape_matches(&p->input_shapes[i], in[i])) return false;
        const oct_value *v = &g->values[g->inputs[i]];
        if (v->kind != OCT_VAL_CONST) continue;
        size_t bytes = (size_t)oct_value_numel(v) * octet_dtype_size(v->dtype);
        if (bytes && memcmp(v->data, in[i]->data, bytes) != 0) return false;
    }
    return true;
}

/* Builds a plan for these inputs, binding the values of every input shape inference needs. */
static oct_plan *build_plan(octet_session *s, const oct_shape *shapes, const octet_tensor *const *in,
                            octet_error *err) {
    const oct_graph *g = s->model->graph;
    for (;;) {
        const octet_tensor *values[64];
        for (int i = 0; i < g->n_inputs; i++)
            values[i] = (s->value_inputs >> i) & 1 ? in[i] : NULL;
        uint64_t needed = 0;
        oct_plan *p = oct_model_plan(s->model, shapes, values, s->batch, &needed, err);
        if (p || !(needed & ~s->value_inputs)) return p;
        s->value_inputs |= needed;
    }
}

/* Finds (or builds) the plan for these input tensors, ordered as the graph inputs. */
static int find_plan(octet_session *s, const octet_tensor *const *in, int *slot, octet_error *err) {
    const oct_graph *g = s->model->graph;
    pthread_mutex_lock(&s->lock);
    for (int p = 0; p < s->n_plans; p++) {
        if (plan_fits(s->plans[p].plan, in)) {
            *slot = p;
            pthread_mutex_unlock(&s->lock);
            return 0;
        }
    }
    int rc = -1;
    if (s->n_plans == MAX_PLANS) {
        oct_fail(err, OCTET_ERR_SHAPE, "more than %d distinct input shapes in one session", MAX_PLANS);
        goto out;
    }
    oct_shape shapes[64];
    if (g->n_inputs > 64) {
        oct_fail(err, OCTET_ERR_UNSUPPORTED, "more than 64 graph inputs");
        goto out;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        shapes[i].rank = in[i]->rank;
        memcpy(shapes[i].dims, in[i]->dims, sizeof shapes[i].dims);
    }
    oct_plan *p = build_plan(s, shapes, in, err);
    if (!p) goto out;
    s->plans[s->n_plans] = (plan_slot){p, NULL};
    *slot = s->n_plans++;
    rc = 0;
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static arena *take_arena(octet_session *s, plan_slot *ps, octet_error *err) {
    pthread_mutex_lock(&s->lock);
    arena *a = ps->free_arenas;
    if (a) ps->free_arenas = a->next;
    pthread_mutex_unlock(&s->lock);
    if (a) return a;
    a = calloc(1, sizeof *a);
    size_t bytes = ps->plan->arena_bytes ? ps->plan->arena_bytes : 64;
    if (a) a->mem = oct_big_alloc(bytes);
    if (!a || !a->mem) {
        free(a);
        oct_fail(err, OCTET_ERR_NOMEM, "cannot allocate the %zu-byte activation arena", bytes);
        return NULL;
    }
    return a;
}

static void give_arena(octet_session *s, plan_slot *ps, arena *a) {
    pthread_mutex_lock(&s->lock);
    a->next = ps->free_arenas;
    ps->free_arenas = a;
    pthread_mutex_unlock(&s->lock);
}

static int check_input(const oct_value *v, const octet_tensor *t, octet_error *err) {
    if (t->dtype != v->dtype)
        return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' must be %s, got %s", v->name,
                        octet_dtype_name(v->dtype), octet_dtype_name(t->dtype));
    if (t->rank < 0 || t->rank > OCTET_MAX_RANK || octet_tensor_numel(t) < 0)
        return oct_fail(err, OCTET_ERR_SHAPE, "input '%s' has an invalid shape", v->name);
    if (!t->data && octet_tensor_numel(t) > 0)
        return oct_fail(err, OCTET_ERR_ARG, "input '%s' has no data", v->name);
    return 0;
}

/* Orders the caller's inputs as the graph inputs. */
static int bind_inputs(const oct_graph *g, int n_in, const char *const *names, const octet_tensor *inputs,
                       const octet_tensor **ordered, octet_error *err) {
    if (n_in != g->n_inputs)
        return oct_fail(err, OCTET_ERR_ARG, "the model has %d inputs, %d given", g->n_inputs, n_in);
    for (int i = 0; i < g->n_inputs; i++) ordered[i] = NULL;
    for (int i = 0; i < n_in; i++) {
        int slot = i;
        if (names) {
            slot = -1;
            for (int k = 0; k < g->n_inputs; k++)
                if (names[i] && strcmp(g->values[g->inputs[k]].name, names[i]) == 0) slot = k;
            if (slot < 0)
                return oct_fail(err, OCTET_ERR_ARG, "the model has no input named '%s'",
                                names[i] ? names[i] : "(null)");
            if (ordered[slot])
                return oct_fail(err, OCTET_ERR_ARG, "input '%s' given twice", names[i]);
        }
        if (check_input(&g->values[g->inputs[slot]], &inputs[i], err)) return -1;
        ordered[slot] = &inputs[i];
    }
    return 0;
}

static int find_outputs(const oct_graph *g, int n_out, const char *const *names, int *vals,
                        octet_error *err) {
    if (!names && n_out != g->n_outputs)
        return oct_fail(err, OCTET_ERR_ARG, "the model has %d outputs, %d requested", g->n_outputs, n_out);
    for (int j = 0; j < n_out; j++) {
        if (!names) {
            vals[j] = g->outputs[j];
            continue;
        }
        vals[j] = -1;
        for (int k = 0; k < g->n_outputs; k++)
            if (names[j] && strcmp(g->values[g->outputs[k]].name, names[j]) == 0) vals[j] = g->outputs[k];
        if (vals[j] < 0)
            return oct_fail(err, OCTET_ERR_ARG, "the model has no output named '%s'",
                            names[j] ? names[j] : "(null)");
    }
    return 0;
}

/* The buffer already handed to an earlier output slot for value v. */
static const void *find_given(const octet_tensor *outputs, const int *vals, int j, int v) {
    for (int k = 0; k < j; k++)
        if (vals[k] == v) return outputs[k].data;
    return NULL;
}

static int is_given(const octet_tensor *outputs, int n_out, int into, const void *data) {
    for (int j = 0; into && j < n_out; j++)
        if (outputs[j].data == data) return 1;
    return 0;
}

typedef struct {
    const oct_plan *p;
    oct_tensor *t;
    char *mem;
    int threads;
    double *node_ms; /* NULL: no timing */
    octet_error *err;
} exec_state;

/* Runs the k-th executed node (team: the stretch's team, or NULL). */
static int run_node(int k, struct oct_team *team, void *state) {
    const exec_state *e = state;
    const oct_graph *g = e->p->g;
    const oct_node *n = &g->nodes[e->p->exec[k]];
    oct_run_ctx ctx = {g, e->t, n->workspace_bytes ? e->mem + n->workspace_offset : NULL, e->threads, team};
    double t0 = e->node_ms ? oct_profile_now_ms() : 0;
    if (n->op->run(&ctx, n, e->err))
        return oct_fail_context(e->err, "node '%s' (%s)", n->name, n->op_type);
    if (e->node_ms) e->node_ms[k] += oct_profile_now_ms() - t0;
    return 0;
}

static int team_op(const oct_plan *p, int k) {
    return (p->g->nodes[p->exec[k]].op->flags & OCT_OP_TEAM) != 0;
}

/* node_ms (NULL: no timing) receives each node's wall time, added to what it holds. Stretches of
   two or more consecutive OCT_OP_TEAM nodes run on one team (engine/team.h). */
static int execute(const oct_plan *p, oct_tensor *t, char *mem, int threads, int teams, double *node_ms,
                   octet_error *err) {
    exec_state e = {p, t, mem, threads, node_ms, err};
    teams = teams && threads > 1;
    for (int k = 0; k < p->n_exec;) {
        int end = k;
        while (teams && end < p->n_exec && team_op(p, end)) end++;
        if (end - k >= 2) {
            if (oct_team_execute(k, end, threads, run_node, &e)) return -1;
            k = end;
        } else if (run_node(k++, NULL, &e)) {
            return -1;
        }
    }
    return 0;
}

int octet_session_run(octet_session *s, int n_in, const char *const *in_names,
                      const octet_tensor *inputs, int n_out, const char *const *out_names,
                      octet_tensor *outputs, octet_error *err) {
    return oct_session_run_profiled(s, n_in, in_names, inputs, n_out, out_names, outputs, 0, NULL, err);
}

int octet_session_run_into(octet_session *s, int n_in, const char *const *in_names,
                           const octet_tensor *inputs, int n_out, const char *const *out_names,
                           octet_tensor *outputs, octet_error *err) {
    return oct_session_run_profiled(s, n_in, in_names, inputs, n_out, out_names, outputs, 1, NULL, err);
}

/* A caller's output buffer must describe exactly what the run writes into it. */
static int check_given_output(const oct_value *v, const octet_tensor *o, octet_error *err) {
    int same = o->data && o->dtype == v->dtype && o->rank == v->rank;
    for (int d = 0; same && d < v->rank; d++) same = o->dims[d] == v->dims[d];
    if (same) return 0;
    char want[96], got[96];
    oct_format_shape(want, sizeof want, v->rank, v->dims);
    oct_format_shape(got, sizeof got, o->rank, o->dims);
    return oct_fail(err, OCTET_ERR_ARG, "output '%s': the caller's buffer is %s %s%s, the run writes %s %s", v->name,
                    octet_dtype_name(o->dtype), got, o->data ? "" : " without data", octet_dtype_name(v->dtype),
                    want);
}

int oct_session_run_profiled(octet_session *s, int n_in, const char *const *in_names,
                             const octet_tensor *inputs, int n_out, const char *const *out_names,
                             octet_tensor *outputs, int into, oct_profile *prof, octet_error *err) {
    if (!s || (n_in && !inputs) || n_out < 0 || (n_out && !outputs))
        return oct_fail(err, OCTET_ERR_ARG, "bad arguments to octet_session_run");
    const oct_graph *g0 = s->model->graph;
    const octet_tensor *ordered[64];
    int out_vals[64];
    if (g0->n_inputs > 64 || n_out > 64)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "more than 64 inputs or outputs");
    if (bind_inputs(g0, n_in, in_names, inputs, ordered, err)) return -1;
    int slot;
    if (find_plan(s, ordered, &slot, err)) return -1;
    plan_slot *ps = &s->plans[slot];
    const oct_plan *p = ps->plan;
    const oct_graph *g = p->g;
    if (find_outputs(g, n_out, out_names, out_vals, err)) return -1;
    for (int j = 0; into && j < n_out; j++)
        if (check_given_output(&g->values[out_vals[j]], &outputs[j], err)) return -1;

    oct_tensor *t = calloc((size_t)g->n_values, sizeof *t);
    arena *a = t ? take_arena(s, ps, err) : NULL;
    int rc = -1;
    if (!t) oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    if (!a) goto done;
    for (int v = 0; v < g->n_values; v++) {
        const oct_value *val = &g->values[v];
        t[v] = oct_value_tensor(val);
        if (val->kind == OCT_VAL_CONST) continue;
        t[v].data = val->planned ? (char *)a->mem + val->arena_offset : NULL;
    }
    for (int i = 0; i < g->n_inputs; i++) t[g->inputs[i]].data = ordered[i]->data;
    for (int i = 0; i < g->n_outputs; i++) {
        int v = g->outputs[i];
        if (g->values[v].kind != OCT_VAL_ACTIVATION) continue;
        /* into: the first caller buffer for v receives it directly */
        for (int j = 0; into && j < n_out && !t[v].data; j++)
            if (out_vals[j] == v) t[v].data = outputs[j].data;
        if (t[v].data) continue;
        int64_t numel = oct_value_numel(&g->values[v]);
        t[v].data = oct_big_alloc((size_t)numel * octet_dtype_size(t[v].dtype) + 1);
        if (!t[v].data) {
            oct_fail(err, OCTET_ERR_NOMEM, "out of memory for output '%s'", g->values[v].name);
            goto done;
        }
    }
    if (prof && oct_profile_bind(prof, p, err)) goto done;
    if (s->pin_threads) oct_pin_team(s->threads); /* refused: the run goes on unpinned */
    if (execute(p, t, a->mem, s->threads, s->teams, prof ? prof->node_ms : NULL, err)) goto done;
    if (prof) prof->runs++;
    /* Activation outputs were allocated for this run: hand them over. Constant or input outputs
       (and an output requested twice) are copied. */
    for (int j = 0; j < n_out; j++) {
        int v = out_vals[j];
        if (into) {
            if (outputs[j].data != t[v].data) {
                const void *src = t[v].data ? t[v].data : find_given(outputs, out_vals, j, v);
                memcpy(outputs[j].data, src, (size_t)oct_value_numel(&g->values[v]) * octet_dtype_size(t[v].dtype));
            }
            continue;
        }
        outputs[j] = t[v];
        if (g->values[v].kind == OCT_VAL_ACTIVATION && g->values[v].is_output && t[v].data) {
            t[v].data = NULL;
            continue;
        }
        size_t bytes = (size_t)oct_value_numel(&g->values[v]) * octet_dtype_size(t[v].dtype);
        outputs[j].data = malloc(bytes + 1);
        if (!outputs[j].data) {
            for (int k = 0; k < j; k++) octet_tensor_release(&outputs[k]);
            oct_fail(err, OCTET_ERR_NOMEM, "out of memory for output '%s'", g->values[v].name);
            goto done;
        }
        const void *src = t[v].data ? t[v].data : find_given(outputs, out_vals, j, v);
        if (bytes) memcpy(outputs[j].data, src, bytes);
    }
    rc = 0;
done:
    for (int i = 0; t && i < g->n_outputs; i++)
        if (g->values[g->outputs[i]].kind == OCT_VAL_ACTIVATION && !is_given(outputs, n_out, into, t[g->outputs[i]].data))
            free(t[g->outputs[i]].data);
    if (a) give_arena(s, ps, a);
    free(t);
    return rc;
}

const oct_plan *oct_session_plan(const octet_session *s) {
    return main_plan(s);
}
