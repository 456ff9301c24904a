/* Automatic mixed precision: rank, search, confirm by the gate, time (see mixed_precision.h). */
#include "mixed_precision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "loader.h"
#include "model.h"

#define TIMED_IMAGES 8
#define TIMING_ROUNDS 5

int oct_qdq_model_build(const oct_calib_result *r, const char *const *exclude, int n_exclude, const char *path,
                        octet_model **model, int **quantized, oct_qparam **params, int *n, octet_error *err) {
    *model = NULL;
    oct_graph *g = oct_graph_clone(r->net.g, err);
    if (!g) return -1;
    int *q = NULL, nq = 0;
    oct_qparam *qp = NULL;
    int rc = oct_qdq_insert(g, r->params, r->n_params, exclude, n_exclude, &q, &qp, &nq, err);
    if (!rc) rc = oct_onnx_write(g, path, err);
    oct_graph_free(g);
    if (!rc && !(*model = octet_model_load(path, err))) rc = oct_fail_context(err, "reading back '%s'", path);
    if (rc || !quantized) free(q), free(qp);
    if (!rc && quantized) *quantized = q, *params = qp, *n = nq;
    return rc;
}

/* ---- ranking ---- */

static int producer_of(const oct_graph *g, int v) {
    for (int i = 0; i < g->n_nodes; i++) {
        const oct_node *n = &g->nodes[i];
        for (int o = 0; !n->dead && o < n->n_out; o++)
            if (n->out[o] == v) return i;
    }
    return -1;
}

#define MAX_WALK 32 /* how far up the graph an unmeasured input is traced */

/* The SQNR a node's activation inputs arrive with: the lowest over its inputs. An input that is
   not quantized (a float tensor inside the int8 model, e.g. an Add output before its Relu) carries
   the error of the inputs it was computed from, so it is traced up to measured tensors; a graph
   input (or a walk too long) counts as the best SQNR measured anywhere. */
static double input_sqnr(const oct_graph *g, const oct_node *n, const double *by_value, double best, int depth) {
    double in = INFINITY;
    for (int i = 0; i < n->n_in; i++) {
        const int v = n->in[i];
        if (v < 0 || g->values[v].kind == OCT_VAL_CONST) continue;
        const int p = isnan(by_value[v]) && depth < MAX_WALK ? producer_of(g, v) : -1;
        in = fmin(in, !isnan(by_value[v]) ? by_value[v]
                      : p >= 0            ? input_sqnr(g, &g->nodes[p], by_value, best, depth + 1)
                                          : best);
    }
    return isinf(in) ? best : in;
}

static int by_loss(const void *a, const void *b) {
    const oct_mp_layer *x = a, *y = b;
    if (x->loss_db != y->loss_db) return x->loss_db < y->loss_db ? 1 : -1;
    return (x->sqnr_out > y->sqnr_out) - (x->sqnr_out < y->sqnr_out);
}

int oct_mp_rank(const oct_graph *g, int n_tensors, const char *const *names, const double *sqnr_db,
                oct_mp_layer **layers, int *n_layers, octet_error *err) {
    *layers = NULL;
    *n_layers = 0;
    double *by_value = malloc(((size_t)g->n_values + 1) * sizeof *by_value);
    oct_mp_layer *out = calloc((size_t)n_tensors + 1, sizeof *out);
    if (!by_value || !out) {
        free(by_value), free(out);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory ranking %d tensors", n_tensors);
    }
    double best = -INFINITY;
    for (int v = 0; v < g->n_values; v++) by_value[v] = NAN;
    for (int k = 0; k < n_tensors; k++) {
        const int v = oct_graph_find_value(g, names[k]);
        if (v < 0 || !isfinite(sqnr_db[k])) continue;
        by_value[v] = sqnr_db[k];
        if (sqnr_db[k] > best) best = sqnr_db[k];
    }
    int count = 0;
    for (int k = 0; k < n_tensors; k++) {
        const int v = oct_graph_find_value(g, names[k]);
        const int p = v < 0 || isnan(by_value[v]) ? -1 : producer_of(g, v);
        if (p < 0 || !g->nodes[p].name[0]) continue; /* an unnamed node cannot be excluded by name */
        const oct_node *n = &g->nodes[p];
        bool listed = false;
        for (int j = 0; j < count && !listed; j++) listed = strcmp(out[j].node, n->name) == 0;
        if (listed) continue;
        const double in = input_sqnr(g, n, by_value, best, 0);
        out[count++] = (oct_mp_layer){n->name, g->values[v].name, in, by_value[v], in - by_value[v]};
    }
    free(by_value);
    qsort(out, (size_t)count, sizeof *out, by_loss);
    *layers = out;
    *n_layers = count;
    return 0;
}

static bool add_name(const char **list, int *n, const char *name) {
    for (int i = 0; i < *n; i++)
        if (strcmp(list[i], name) == 0) return false;
    list[(*n)++] = name;
    return true;
}

/* Keeps activation v in float: its producer and every node that reads it run fp32. */
static void float_tensor(const oct_graph *g, int v, const char **list, int *n) {
    for (int i = 0; i < g->n_nodes; i++) {
        const oct_node *c = &g->nodes[i];
        if (c->dead || !c->name[0]) continue;
        bool touches = false;
        for (int j = 0; j < c->n_in && !touches; j++) touches = c->in[j] == v;
        for (int j = 0; j < c->n_out && !touches; j++) touches = c->out[j] == v;
        if (touches) add_name(list, n, c->name);
    }
}

int oct_mp_fp32_nodes(const oct_graph *g, const oct_mp_layer *layers, int k, const char *const *user_exclude,
                      int n_user, const char ***nodes, int *n_nodes, octet_error *err) {
    const char **list = malloc(((size_t)g->n_nodes + (size_t)n_user + 1) * sizeof *list);
    if (!list) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    int n = 0;
    for (int i = 0; i < n_user; i++) add_name(list, &n, user_exclude[i]);
    for (int l = 0; l < k; l++) {
        for (int i = 0; i < g->n_nodes; i++) {
            const oct_node *c = &g->nodes[i];
            if (c->dead || strcmp(c->name, layers[l].node) != 0) continue;
            for (int j = 0; j < c->n_in; j++)
                if (c->in[j] >= 0 && g->values[c->in[j]].kind != OCT_VAL_CONST) float_tensor(g, c->in[j], list, &n);
            for (int j = 0; j < c->n_out; j++)
                if (c->out[j] >= 0) float_tensor(g, c->out[j], list, &n);
        }
    }
    *nodes = list;
    *n_nodes = n;
    return 0;
}

/* ---- candidates ---- */

/* A candidate with layers[0..k) in fp32: built next to the output, loaded, the file removed. */
static int build_candidate(const oct_mp_search *s, int k, octet_model **model, int *n_nodes, octet_error *err) {
    const char **nodes = NULL;
    int n = 0;
    if (oct_mp_fp32_nodes(s->calib->net.g, s->ranked, k, s->user_exclude, s->n_user_exclude, &nodes, &n, err))
        return -1;
    const size_t len = strlen(s->out_path) + 32;
    char *path = malloc(len);
    int rc = -1, fd = -1;
    if (!path) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(path, len, "%s.candidate-XXXXXX", s->out_path);
    if ((fd = mkstemp(path)) < 0) {
        oct_fail(err, OCTET_ERR_IO, "cannot create a candidate model next to '%s'", s->out_path);
        goto done;
    }
    close(fd);
    rc = oct_qdq_model_build(s->calib, nodes, n, path, model, NULL, NULL, NULL, err);
    unlink(path);
    *n_nodes = n;
done:
    free(path);
    free(nodes);
    return rc;
}

/* Validates a model against the fp32 run: fills the attempt (and keeps the run in *e). */
static int try_model(oct_mp_search *s, const octet_model *model, const char *label, oct_eval *e, oct_mp_attempt *a,
                     octet_error *err) {
    oct_eval_model m;
    if (oct_eval_model_adopt(&m, model, false, label, s->batch, s->threads, err)) {
        oct_eval_model_close(&m);
        return -1;
    }
    int rc = oct_eval_run(&m, s->val, s->n_val, s->batch, s->progress ? label : NULL, e, err);
    oct_eval_model_close(&m);
    if (rc) return -1;
    oct_gate_result g;
    if (oct_eval_gate(&s->ref, e, s->max_drop, s->max_dice_drop, &g, err)) return -1;
    a->approved = g.approved;
    a->worst_drop = g.worst_drop;
    a->worst_class = g.worst_class;
    a->headline = oct_eval_headline(e);
    return 0;
}

/* Tries layers[0..k) in fp32; *approved tells. The last approved run is kept in s->final. */
static int try_prefix(oct_mp_search *s, int k, bool *approved, octet_error *err) {
    for (int i = 0; i < s->n_attempts; i++)
        if (s->attempts[i].layers == k) return *approved = s->attempts[i].approved, 0;
    if (s->n_attempts == OCT_MP_MAX_ATTEMPTS) return oct_fail(err, OCTET_ERR_UNSUPPORTED, "too many attempts");
    octet_model *model = NULL;
    oct_mp_attempt a = {.layers = k};
    if (build_candidate(s, k, &model, &a.nodes, err)) return oct_fail_context(err, "candidate with %d fp32 layers", k);
    char label[64];
    snprintf(label, sizeof label, "validating %d fp32 layer%s", k, k == 1 ? "" : "s");
    oct_eval e;
    const int rc = try_model(s, model, label, &e, &a, err);
    octet_model_free(model);
    if (rc) return -1;
    s->attempts[s->n_attempts++] = a;
    printf("  %2d layer%s fp32 (%3d nodes): %s %.4g, worst drop %.4g: %s\n", k, k == 1 ? " " : "s", a.nodes,
           s->ref.task.segmentation ? "mean Dice" : "accuracy", a.headline, a.worst_drop,
           a.approved ? "passes" : "fails");
    fflush(stdout);
    if (a.approved && (!s->have_final || k < s->kept)) {
        if (s->have_final) oct_eval_free(&s->final);
        s->final = e;
        s->have_final = true;
        s->kept = k;
    } else {
        oct_eval_free(&e);
    }
    *approved = a.approved;
    return 0;
}

/* More fp32 layers while the gate fails (1, 2, 4, ... up to the limit), then bisection between
   the last failure and the first pass: the smallest passing prefix, assuming that more fp32
   layers never make the gate worse. Every answer is a validated candidate. */
static int search(oct_mp_search *s, octet_error *err) {
    const int cap = s->max_layers < s->n_ranked ? s->max_layers : s->n_ranked;
    int lo = 0, hi = -1;
    bool ok;
    for (int k = 1; k <= cap && hi < 0; k = k * 2 > cap && k < cap ? cap : k * 2) {
        if (try_prefix(s, k, &ok, err)) return -1;
        if (ok) hi = k;
        else lo = k;
    }
    if (hi < 0) return 0;
    while (hi - lo > 1) {
        const int mid = lo + (hi - lo) / 2;
        if (try_prefix(s, mid, &ok, err)) return -1;
        if (ok) hi = mid;
        else lo = mid;
    }
    s->approved = true;
    return oct_mp_fp32_nodes(s->calib->net.g, s->ranked, s->kept, s->user_exclude, s->n_user_exclude, &s->fp32_nodes,
                             &s->n_fp32_nodes, err);
}

/* ---- speed ---- */

static double clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ms per image at batch 1 over the first n samples: for each image its fastest of TIMING_ROUNDS
   runs (load on a shared machine only ever adds time), averaged. The models take turns within
   each round so that slow phases of the machine fall on all of them alike. */
static int time_models(oct_mp_search *s, const octet_model *const *models, int n_models, double *ms,
                       octet_error *err) {
    oct_eval_model m[3];
    memset(m, 0, sizeof m);
    const int n = s->n_val < TIMED_IMAGES ? (int)s->n_val : TIMED_IMAGES;
    octet_tensor *x = calloc((size_t)n, sizeof *x);
    double *best = malloc((size_t)(3 * n) * sizeof *best + 1);
    int rc = -1;
    if (!x || !best) {
        free(x), free(best);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
    }
    for (int j = 0; j < 3 * n; j++) best[j] = INFINITY;
    for (int j = 0; j < n_models; j++)
        if (oct_eval_model_adopt(&m[j], models[j], false, "timing", 1, s->threads, err)) goto done;
    for (int i = 0; i < n; i++)
        if (oct_dataset_batch(s->val, i, 1, m[0].in_rank, m[0].in_dims, &x[i], err)) goto done;
    for (int r = 0; r <= TIMING_ROUNDS; r++) /* round 0 warms up (plans, caches) */
        for (int j = 0; j < n_models; j++)
            for (int i = 0; i < n; i++) {
                octet_tensor y;
                const double t0 = clock_ms();
                if (oct_eval_model_run(&m[j], &x[i], &y, err)) goto done;
                const double t = clock_ms() - t0;
                octet_tensor_release(&y);
                if (r > 0 && t < best[j * n + i]) best[j * n + i] = t;
            }
    for (int j = 0; j < n_models; j++) {
        ms[j] = 0;
        for (int i = 0; i < n; i++) ms[j] += best[j * n + i] / n;
    }
    s->timed_images = n;
    rc = 0;
done:
    for (int i = 0; i < n; i++) octet_tensor_release(&x[i]);
    free(x);
    free(best);
    for (int j = 0; j < n_models; j++) oct_eval_model_close(&m[j]);
    return rc;
}

int oct_mp_run(oct_mp_search *s, const octet_model *model, const octet_model *int8, int n_tensors,
               const char *const *names, const double *sqnr_db, octet_error *err) {
    oct_eval_model m;
    if (oct_eval_model_adopt(&m, model, false, "fp32 model", s->batch, s->threads, err)) {
        oct_eval_model_close(&m);
        return -1;
    }
    int rc = oct_eval_run(&m, s->val, s->n_val, s->batch, s->progress ? "validating fp32" : NULL, &s->ref, err);
    oct_eval_model_close(&m);
    if (rc) return -1;
    oct_mp_attempt a = {.nodes = s->n_user_exclude};
    if (try_model(s, int8, "validating int8", &s->int8, &a, err)) return -1;
    s->attempts[s->n_attempts++] = a;
    if (oct_mp_rank(s->calib->net.g, n_tensors, names, sqnr_db, &s->ranked, &s->n_ranked, err)) return -1;
    printf("mixed precision: the int8 model %s the gate (%s %.4g, worst drop %.4g; limit %g)\n",
           a.approved ? "passes" : "fails", s->ref.task.segmentation ? "mean Dice" : "accuracy", a.headline,
           a.worst_drop, s->ref.task.segmentation ? s->max_dice_drop : s->max_drop);
    if (a.approved) {
        s->approved = true;
        s->kept = 0;
        if (oct_mp_fp32_nodes(s->calib->net.g, s->ranked, 0, s->user_exclude, s->n_user_exclude, &s->fp32_nodes,
                              &s->n_fp32_nodes, err))
            return -1;
    } else {
        printf("keeping the layers that lose the most SQNR in fp32 (%d ranked, at most %d):\n", s->n_ranked,
               s->max_layers < s->n_ranked ? s->max_layers : s->n_ranked);
        fflush(stdout);
        if (search(s, err)) return -1;
    }
    /* Timing: fp32, int8 and the approved mixed model (rebuilt: candidates are not kept). */
    octet_model *mixed = NULL;
    int dummy;
    if (s->approved && s->kept > 0 && build_candidate(s, s->kept, &mixed, &dummy, err)) return -1;
    const octet_model *models[3] = {model, int8, mixed};
    double ms[3];
    rc = time_models(s, models, mixed ? 3 : 2, ms, err);
    octet_model_free(mixed);
    if (rc) return -1;
    s->ms_fp32 = ms[0];
    s->ms_int8 = ms[1];
    s->ms_final = !s->approved ? NAN : mixed ? ms[2] : ms[1];
    return 0;
}

void oct_mp_search_free(oct_mp_search *s) {
    free(s->ranked);
    free(s->fp32_nodes);
    oct_eval_free(&s->ref);
    oct_eval_free(&s->int8);
    if (s->have_final) oct_eval_free(&s->final);
    s->ranked = NULL;
    s->fp32_nodes = NULL;
    s->have_final = false;
}

/* ---- reports ---- */

/* Per class: recall (%) or Dice of a run; NaN where undefined. */
static double class_metric(const oct_eval *e, int c) {
    if (e->task.segmentation) return oct_dice(e->inter[c], e->pred[c], e->lab[c], NULL);
    int64_t support = 0;
    for (int j = 0; j < e->task.k; j++) support += e->cm[(int64_t)c * e->task.k + j];
    return support ? 100.0 * (double)e->cm[(int64_t)c * e->task.k + c] / (double)support : NAN;
}

void oct_mp_print(const oct_mp_search *s, const char *const *class_names, int n_class_names) {
    const bool seg = s->ref.task.segmentation;
    const oct_eval *runs[3] = {&s->ref, &s->int8, s->have_final ? &s->final : NULL};
    printf("\n%-28s %9s %9s %9s\n", seg ? "Dice" : "%", "fp32", "int8", "mixed");
    printf("%-28s", seg ? "mean" : "accuracy");
    for (int m = 0; m < 3; m++) runs[m] ? printf(" %9.4g", oct_eval_headline(runs[m])) : printf(" %9s", "-");
    printf("\n");
    for (int c = 0; c < s->ref.task.k; c++) {
        char label[64];
        if (class_names && c < n_class_names) snprintf(label, sizeof label, "%s %d %s", seg ? "" : "recall", c, class_names[c]);
        else snprintf(label, sizeof label, "%s class %d", seg ? "Dice" : "recall", c);
        printf("%-28.28s", label);
        for (int m = 0; m < 3; m++) runs[m] ? printf(" %9.4g", class_metric(runs[m], c)) : printf(" %9s", "-");
        printf("\n");
    }
    if (s->approved && s->kept > 0) {
        printf("\nkept in fp32: %d layer%s (SQNR loss across the layer), %d node%s run fp32 in all:\n", s->kept,
               s->kept == 1 ? "" : "s", s->n_fp32_nodes, s->n_fp32_nodes == 1 ? "" : "s");
        for (int l = 0; l < s->kept; l++)
            printf("  %6.2f dB -> %6.2f dB  (loss %5.2f)  %s\n", s->ranked[l].sqnr_in, s->ranked[l].sqnr_out,
                   s->ranked[l].loss_db, s->ranked[l].node);
    } else if (s->approved) {
        printf("\nno layer needs fp32\n");
    } else {
        printf("\nthe gate still fails with %d layers in fp32 (--max-fp32-layers %d): no model written\n",
               s->max_layers < s->n_ranked ? s->max_layers : s->n_ranked, s->max_layers);
    }
    printf("speed (batch 1, %d images, each the best of %d runs): fp32 %.3f ms/image, int8 %.3f", s->timed_images, TIMING_ROUNDS,
           s->ms_fp32, s->ms_int8);
    if (s->approved && s->kept > 0)
        printf(", mixed %.3f (%.2fx the int8 time, %.2fx faster than fp32)", s->ms_final, s->ms_final / s->ms_int8,
               s->ms_fp32 / s->ms_final);
    else
        printf(" (%.2fx faster than fp32)", s->ms_fp32 / s->ms_int8);
    printf("\n%s\n", s->approved ? "APPROVED" : "REJECTED");
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.6g", x);
    else fputs("null", f);
}

static void json_run(FILE *f, const char *key, const oct_eval *e, double ms) {
    fprintf(f, "    \"%s\": {\"%s\": ", key, e->task.segmentation ? "mean_dice" : "accuracy");
    json_num(f, oct_eval_headline(e));
    fprintf(f, ", \"%s\": [", e->task.segmentation ? "dice" : "recall");
    for (int c = 0; c < e->task.k; c++) {
        fprintf(f, "%s", c ? ", " : "");
        json_num(f, class_metric(e, c));
    }
    fprintf(f, "], \"ms_per_image\": ");
    json_num(f, ms);
    fprintf(f, "}");
}

void oct_mp_json(FILE *f, const oct_mp_search *s) {
    fprintf(f, "  \"mixed_precision\": {\n    \"gate\": {\"metric\": \"%s\", \"max_drop\": ",
            s->ref.task.segmentation ? "dice" : "points");
    json_num(f, s->ref.task.segmentation ? s->max_dice_drop : s->max_drop);
    fprintf(f, "},\n    \"validation_samples\": %lld,\n    \"max_fp32_layers\": %d,\n    \"approved\": %s,\n",
            (long long)s->n_val, s->max_layers, s->approved ? "true" : "false");
    fprintf(f, "    \"written\": %s,\n    \"fp32_layers\": [", s->approved ? "true" : "false");
    for (int l = 0; s->approved && l < s->kept; l++) {
        fprintf(f, "%s{\"node\": ", l ? ", " : "");
        json_str(f, s->ranked[l].node);
        fprintf(f, ", \"tensor\": ");
        json_str(f, s->ranked[l].tensor);
        fprintf(f, ", \"sqnr_in_db\": ");
        json_num(f, s->ranked[l].sqnr_in);
        fprintf(f, ", \"sqnr_out_db\": ");
        json_num(f, s->ranked[l].sqnr_out);
        fprintf(f, "}");
    }
    fprintf(f, "],\n    \"fp32_nodes\": [");
    for (int i = 0; s->approved && i < s->n_fp32_nodes; i++) {
        fprintf(f, "%s", i ? ", " : "");
        json_str(f, s->fp32_nodes[i]);
    }
    fprintf(f, "],\n    \"attempts\": [");
    for (int i = 0; i < s->n_attempts; i++) {
        const oct_mp_attempt *a = &s->attempts[i];
        fprintf(f, "%s{\"fp32_layers\": %d, \"fp32_nodes\": %d, \"headline\": ", i ? ", " : "", a->layers, a->nodes);
        json_num(f, a->headline);
        fprintf(f, ", \"worst_drop\": ");
        json_num(f, a->worst_drop);
        fprintf(f, ", \"worst_class\": %d, \"approved\": %s}", a->worst_class, a->approved ? "true" : "false");
    }
    fprintf(f, "],\n");
    json_run(f, "fp32", &s->ref, s->ms_fp32);
    fprintf(f, ",\n");
    json_run(f, "int8", &s->int8, s->ms_int8);
    if (s->have_final && s->kept > 0) {
        fprintf(f, ",\n");
        json_run(f, "mixed", &s->final, s->ms_final);
    }
    fprintf(f, ",\n    \"speed\": {\"images\": %d, \"batch\": 1, \"fp32_ms\": ", s->timed_images);
    json_num(f, s->ms_fp32);
    fprintf(f, ", \"int8_ms\": ");
    json_num(f, s->ms_int8);
    fprintf(f, ", \"final_ms\": ");
    json_num(f, s->ms_final);
    fprintf(f, ", \"final_over_fp32\": ");
    json_num(f, s->ms_final / s->ms_fp32);
    fprintf(f, ", \"final_over_int8\": ");
    json_num(f, s->ms_final / s->ms_int8);
    fprintf(f, "}\n  }");
}
