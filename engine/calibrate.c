/* Calibration: observers over the fp32 calibration network, ranges by method, and the per-tensor
   error of the resulting int8 model; see calibrate.h. */
#include "calibrate.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "passes/passes.h"

void oct_qparam_from_range(oct_qparam *q, octet_dtype type, double lo, double hi) {
    lo = fmin(lo, 0.0);
    hi = fmax(hi, 0.0);
    q->type = type;
    q->lo = lo;
    q->hi = hi;
    if (type == OCTET_INT8) {
        const double a = fmax(-lo, hi);
        q->scale = (float)(a / 127.0);
        q->zp = 0;
    } else {
        q->scale = (float)((hi - lo) / 255.0);
        q->zp = 0;
        if (q->scale > FLT_MIN) {
            const double z = rint(-lo / q->scale);
            q->zp = (int32_t)(z < 0 ? 0 : z > 255 ? 255 : z);
        }
    }
    /* A tensor that is all zeros still needs a valid scale. */
    if (!(q->scale > FLT_MIN) || !isfinite(q->scale)) {
        q->scale = 1.f;
        q->zp = 0;
    }
}

void oct_calib_result_free(oct_calib_result *r) {
    oct_calib_net_free(&r->net);
    free(r->params);
    r->params = NULL;
    r->n_params = 0;
}

typedef struct {
    oct_observer *obs;
    int n;
    bool hist; /* second pass */
} observe_state;

static void observe(void *user, int value, const octet_tensor *t) {
    observe_state *s = user;
    if (value < 0 || value >= s->n || t->dtype != OCTET_FLOAT || !t->data) return;
    const int64_t n = octet_tensor_numel(t);
    if (s->hist) oct_observer_hist(&s->obs[value], t->data, n);
    else oct_observer_minmax(&s->obs[value], t->data, n);
}

static void release_all(octet_tensor *t, int n) {
    for (int i = 0; i < n; i++) octet_tensor_release(&t[i]);
}

/* Fetches batch i into in[] (n graph inputs); checks that it has the shapes of the first batch. */
static int fetch(const oct_calib_source *src, int64_t i, const oct_graph *model, octet_tensor *in,
                 const octet_tensor *first, octet_error *err) {
    memset(in, 0, (size_t)model->n_inputs * sizeof *in);
    if (src->get(src->user, i, in, err)) return oct_fail_context(err, "calibration batch %lld", (long long)i);
    for (int k = 0; first && k < model->n_inputs; k++) {
        if (in[k].rank != first[k].rank || in[k].dtype != first[k].dtype ||
            memcmp(in[k].dims, first[k].dims, (size_t)in[k].rank * sizeof(int64_t)) != 0) {
            release_all(in, model->n_inputs);
            return oct_fail(err, OCTET_ERR_SHAPE, "calibration batch %lld of input '%s' has another shape than batch 0",
                            (long long)i, model->values[model->inputs[k]].name);
        }
    }
    return 0;
}

/* One pass over the data: runs the network with the observers (inputs observed too). */
static int pass(const oct_calib_result *r, const oct_graph *model, const oct_calib_source *src,
                const oct_calib_options *o, observe_state *st, const octet_tensor *first, int64_t done,
                int64_t total, octet_error *err) {
    octet_tensor in[64];
    const oct_graph *g = r->net.g;
    for (int64_t i = 0; i < src->n_batches; i++) {
        if (fetch(src, i, model, in, first, err)) return -1;
        for (int k = 0; k < g->n_inputs; k++) observe(st, g->inputs[k], &in[k]);
        const int rc = oct_calib_net_run(&r->net, in, o->threads, observe, st, NULL, err);
        release_all(in, model->n_inputs);
        if (rc) return -1;
        if (o->progress) o->progress(o->progress_user, done + i + 1, total);
    }
    return 0;
}

int oct_calibrate(const oct_graph *model, const oct_calib_source *src, const oct_calib_options *o,
                  oct_calib_result *r, octet_error *err) {
    memset(r, 0, sizeof *r);
    if (src->n_batches < 1) return oct_fail(err, OCTET_ERR_ARG, "no calibration data");
    if (model->n_inputs > 64) return oct_fail(err, OCTET_ERR_UNSUPPORTED, "more than 64 graph inputs");
    if (o->act_type != OCTET_UINT8 && o->act_type != OCTET_INT8)
        return oct_fail(err, OCTET_ERR_ARG, "activations must be uint8 or int8");
    octet_tensor first[64];
    if (fetch(src, 0, model, first, NULL, err)) return -1;
    int rc = oct_calib_net_build(&r->net, model, first, err);
    if (rc) {
        release_all(first, model->n_inputs);
        return -1;
    }
    const int nv = r->net.g->n_values;
    oct_observer *obs = calloc((size_t)nv + 1, sizeof *obs);
    r->params = calloc((size_t)nv + 1, sizeof *r->params);
    r->n_params = nv;
    rc = -1;
    if (!obs || !r->params) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory for %d observers", nv);
        goto done;
    }
    for (int v = 0; v < nv; v++) oct_observer_init(&obs[v]);
    observe_state st = {obs, nv, false};
    const bool hist = o->method != OCT_CALIB_MINMAX;
    const int64_t total = src->n_batches * (hist ? 2 : 1);
    if (pass(r, model, src, o, &st, first, 0, total, err)) goto done;
    if (hist) {
        for (int v = 0; v < nv; v++)
            if (obs[v].count && oct_observer_begin_hist(&obs[v], err)) goto done;
        st.hist = true;
        if (pass(r, model, src, o, &st, first, src->n_batches, total, err)) goto done;
    }
    for (int v = 0; v < nv; v++) {
        const oct_value *val = &r->net.g->values[v];
        if (!obs[v].count || val->kind == OCT_VAL_CONST || val->dtype != OCTET_FLOAT) continue;
        double lo, hi;
        if (oct_observer_range(&obs[v], o->method, o->percentile, o->act_type == OCTET_INT8, &lo, &hi, err)) {
            oct_fail_context(err, "tensor '%s'", val->name);
            goto done;
        }
        oct_qparam *q = &r->params[v];
        oct_qparam_from_range(q, o->act_type, lo, hi);
        q->valid = true;
        q->min = obs[v].min;
        q->max = obs[v].max;
        q->clip_rate = oct_observer_clip_rate(&obs[v], q->lo, q->hi);
    }
    rc = 0;
done:
    for (int v = 0; obs && v < nv; v++) oct_observer_free(&obs[v]);
    free(obs);
    release_all(first, model->n_inputs);
    if (rc) oct_calib_result_free(r);
    return rc;
}

/* ---- per-tensor error of the int8 model ---------------------------------------------------- */

typedef struct {
    int n;
    const int *fp_value, *q_value;  /* per tensor: value index in each graph (-1: absent) */
    float **ref;                    /* per tensor: the fp32 values of the current batch */
    int64_t *len;
    const oct_qparam *params;
    double *signal, *noise;
    bool *seen;
    bool fail;
} sqnr_state;

static void keep_fp32(void *user, int value, const octet_tensor *t) {
    sqnr_state *s = user;
    for (int k = 0; k < s->n; k++) {
        if (s->fp_value[k] != value || t->dtype != OCTET_FLOAT) continue;
        const int64_t n = octet_tensor_numel(t);
        free(s->ref[k]);
        s->ref[k] = malloc((size_t)n * sizeof(float) + 1);
        if (!s->ref[k]) {
            s->fail = true;
            continue;
        }
        memcpy(s->ref[k], t->data, (size_t)n * sizeof(float));
        s->len[k] = n;
    }
}

static void compare_int8(void *user, int value, const octet_tensor *t) {
    sqnr_state *s = user;
    for (int k = 0; k < s->n; k++) {
        if (s->q_value[k] != value || !s->ref[k] || octet_tensor_numel(t) != s->len[k]) continue;
        if (t->dtype != OCTET_UINT8 && t->dtype != OCTET_INT8) continue;
        const float sc = s->params[k].scale;
        const int32_t zp = s->params[k].zp;
        double sig = 0, noi = 0;
        for (int64_t i = 0; i < s->len[k]; i++) {
            const int32_t qv = t->dtype == OCTET_UINT8 ? ((const uint8_t *)t->data)[i] : ((const int8_t *)t->data)[i];
            const double x = s->ref[k][i], y = (double)(qv - zp) * sc;
            sig += x * x;
            noi += (x - y) * (x - y);
        }
        s->signal[k] += sig;
        s->noise[k] += noi;
        s->seen[k] = true;
    }
}

int oct_calib_sqnr(const oct_graph *fp32, const oct_graph *int8, const oct_calib_source *src, int64_t n_batches,
                   int threads, int n_tensors, const char *const *names, const oct_qparam *params, double *sqnr_db,
                   octet_error *err) {
    if (n_batches > src->n_batches) n_batches = src->n_batches;
    if (n_batches < 1) return oct_fail(err, OCTET_ERR_ARG, "no calibration data");
    if (fp32->n_inputs != int8->n_inputs)
        return oct_fail(err, OCTET_ERR_ARG, "the fp32 and int8 models have different inputs");
    octet_tensor in[64];
    if (fetch(src, 0, fp32, in, NULL, err)) return -1;
    oct_calib_net net;
    oct_plan *qp = NULL;
    int rc = -1;
    const size_t n = (size_t)n_tensors + 1;
    int *fv = malloc(n * sizeof(int)), *qv = malloc(n * sizeof(int));
    float **ref = calloc(n, sizeof(float *));
    int64_t *len = calloc(n, sizeof(int64_t));
    double *sig = calloc(n, sizeof(double)), *noi = calloc(n, sizeof(double));
    bool *seen = calloc(n, sizeof(bool));
    if (oct_calib_net_build(&net, fp32, in, err)) {
        release_all(in, fp32->n_inputs);
        free(fv), free(qv), free(ref), free(len), free(sig), free(noi), free(seen);
        return -1;
    }
    oct_shape shapes[64];
    for (int i = 0; i < fp32->n_inputs; i++) {
        shapes[i].rank = in[i].rank;
        memcpy(shapes[i].dims, in[i].dims, sizeof shapes[i].dims);
    }
    release_all(in, fp32->n_inputs);
    if (!fv || !qv || !ref || !len || !sig || !noi || !seen) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (!(qp = oct_plan_build(int8, shapes, NULL, 1, NULL, err))) goto done;
    for (int k = 0; k < n_tensors; k++) {
        char qname[1024];
        oct_qdq_quantized_name(names[k], qname, sizeof qname);
        fv[k] = oct_graph_find_value(net.g, names[k]);
        qv[k] = oct_graph_find_value(qp->g, qname);
    }
    sqnr_state st = {n_tensors, fv, qv, ref, len, params, sig, noi, seen, false};
    for (int64_t b = 0; b < n_batches; b++) {
        if (fetch(src, b, fp32, in, NULL, err)) goto done;
        for (int i = 0; i < fp32->n_inputs; i++) keep_fp32(&st, net.g->inputs[i], &in[i]);
        int r1 = oct_calib_net_run(&net, in, threads, keep_fp32, &st, NULL, err);
        int r2 = r1 ? -1 : oct_graph_run_observed(qp->g, qp->exec, qp->n_exec, in, threads, compare_int8, &st, NULL, err);
        release_all(in, fp32->n_inputs);
        if (r1 || r2) goto done;
        if (st.fail) {
            oct_fail(err, OCTET_ERR_NOMEM, "out of memory keeping fp32 tensors");
            goto done;
        }
    }
    for (int k = 0; k < n_tensors; k++)
        sqnr_db[k] = !seen[k]      ? NAN
                     : noi[k] <= 0 ? INFINITY
                                   : 10.0 * log10(sig[k] / noi[k]);
    rc = 0;
done:
    for (int k = 0; ref && k < n_tensors; k++) free(ref[k]);
    free(fv), free(qv), free(ref), free(len), free(sig), free(noi), free(seen);
    oct_plan_free(qp);
    oct_calib_net_free(&net);
    return rc;
}
