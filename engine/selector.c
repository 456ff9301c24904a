/* The adaptive int8/fp32 selector: serves int8 while it holds up, falls back to fp32 for good
   when it does not (see octet.h). Built on the public session API only. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "octet.h"

#define DEFAULT_MAX_DISAGREEMENT 0.05
#define DEFAULT_MIN_SHADOW_RUNS 20
/* Share of positions (rows of [N, C] logits, ...) that may differ in one agreeing request. */
#define POSITION_TOLERANCE 0.01
/* A value-compared float position differs beyond this share of the largest |fp32| value. */
#define VALUE_TOLERANCE 0.01
/* Shadowing every 10^18-th request is as good as never; keeps 1/fraction in range. */
#define MAX_SHADOW_PERIOD 1000000000000000000ULL

struct octet_selector {
    octet_model *owned_fp32, *owned_int8; /* loaded by octet_selector_create, else NULL */
    octet_session *fp32, *int8;           /* int8 is NULL when there is no usable int8 model */
    uint64_t shadow_period;               /* shadow request i when i % period == 0; 0: never */
    double max_disagreement;
    uint64_t min_shadow_runs;

    pthread_mutex_t lock; /* guards everything below */
    octet_selector_stats stats;
};

/* ---- options ---- */

static int resolve_options(const octet_selector_options *o, octet_session_options *so, uint64_t *period,
                           double *max_dis, uint64_t *min_runs, octet_error *err) {
    octet_selector_options d = {0};
    if (!o) o = &d;
    if (o->threads < 0 || o->batch < 0)
        return oct_fail(err, OCTET_ERR_ARG, "selector threads and batch must be >= 0 (got %d, %d)", o->threads,
                        o->batch);
    if (!(o->shadow_fraction >= 0.0 && o->shadow_fraction <= 1.0))
        return oct_fail(err, OCTET_ERR_ARG, "shadow fraction must be in [0, 1], got %g", o->shadow_fraction);
    if (!(o->max_disagreement >= 0.0 && o->max_disagreement <= 1.0))
        return oct_fail(err, OCTET_ERR_ARG, "max disagreement must be in [0, 1], got %g", o->max_disagreement);
    if (o->min_shadow_runs < 0)
        return oct_fail(err, OCTET_ERR_ARG, "min shadow runs must be >= 0, got %d", o->min_shadow_runs);
    *so = (octet_session_options){.threads = o->threads, .batch = o->batch, .pin_threads = o->pin_threads};
    *period = 0;
    if (o->shadow_fraction > 0.0) {
        double k = round(1.0 / o->shadow_fraction);
        *period = k >= (double)MAX_SHADOW_PERIOD ? MAX_SHADOW_PERIOD : k < 1.0 ? 1 : (uint64_t)k;
    }
    *max_dis = o->max_disagreement > 0.0 ? o->max_disagreement : DEFAULT_MAX_DISAGREEMENT;
    *min_runs = o->min_shadow_runs > 0 ? (uint64_t)o->min_shadow_runs : DEFAULT_MIN_SHADOW_RUNS;
    return 0;
}

/* ---- do the int8 model's inputs and outputs match the fp32 model's? ---- */

typedef struct {
    const char *name;
    octet_dtype dtype;
    int rank;
    int64_t dims[OCTET_MAX_RANK];
} io_info;

static void get_io(const octet_session *s, bool output, int i, io_info *io) {
    memset(io, 0, sizeof *io);
    if (output) octet_session_output_info(s, i, &io->name, &io->dtype, &io->rank, io->dims);
    else octet_session_input_info(s, i, &io->name, &io->dtype, &io->rank, io->dims);
}

static bool io_equal(const io_info *a, const io_info *b) {
    if (strcmp(a->name, b->name) != 0 || a->dtype != b->dtype || a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return false;
    return true;
}

/* "'x' float32 [1, 3]" */
static void io_str(const io_info *io, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "'%s' %s [", io->name, octet_dtype_name(io->dtype));
    for (int d = 0; d < io->rank && n >= 0 && (size_t)n < cap; d++)
        n += snprintf(buf + n, cap - (size_t)n, d ? ", %lld" : "%lld", (long long)io->dims[d]);
    if (n >= 0 && (size_t)n < cap) snprintf(buf + n, cap - (size_t)n, "]");
}

/* Writes why the int8 session cannot stand in for the fp32 one into why; returns false if it can. */
static bool io_mismatch(const octet_session *fp32, const octet_session *int8, char *why, size_t cap) {
    for (int side = 0; side < 2; side++) {
        bool output = side == 1;
        const char *what = output ? "output" : "input";
        int n32 = output ? octet_session_output_count(fp32) : octet_session_input_count(fp32);
        int n8 = output ? octet_session_output_count(int8) : octet_session_input_count(int8);
        if (n32 != n8) {
            snprintf(why, cap, "it has %d %ss, the fp32 model %d", n8, what, n32);
            return true;
        }
        for (int i = 0; i < n32; i++) {
            io_info a, b;
            get_io(fp32, output, i, &a);
            get_io(int8, output, i, &b);
            if (io_equal(&a, &b)) continue;
            char sa[128], sb[128];
            io_str(&a, sa, sizeof sa);
            io_str(&b, sb, sizeof sb);
            snprintf(why, cap, "its %s %d is %s, the fp32 model's %s", what, i, sb, sa);
            return true;
        }
    }
    return false;
}

/* ---- create / free ---- */

static octet_selector *create(octet_model *owned_fp32, octet_model *owned_int8, const octet_model *fp32,
                              const octet_model *int8, const char *int8_label, const char *int8_problem,
                              const octet_selector_options *opts, octet_error *err) {
    octet_session_options so = {0};
    uint64_t period = 0, min_runs = 0;
    double max_dis = 0;
    octet_selector *sel = NULL;
    if (!fp32) {
        oct_fail(err, OCTET_ERR_ARG, "the selector needs an fp32 model");
        goto fail;
    }
    if (resolve_options(opts, &so, &period, &max_dis, &min_runs, err)) goto fail;
    sel = calloc(1, sizeof *sel);
    if (!sel) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        goto fail;
    }
    sel->owned_fp32 = owned_fp32;
    sel->owned_int8 = owned_int8;
    sel->shadow_period = period;
    sel->max_disagreement = max_dis;
    sel->min_shadow_runs = min_runs;
    sel->fp32 = octet_session_create(fp32, &so, err);
    if (!sel->fp32) {
        oct_fail_context(err, "fp32 model");
        goto fail;
    }
    if (pthread_mutex_init(&sel->lock, NULL) != 0) {
        oct_fail(err, OCTET_ERR_INTERNAL, "cannot create the selector's lock");
        goto fail;
    }

    char *reason = sel->stats.reason;
    size_t cap = sizeof sel->stats.reason;
    if (int8_problem) {
        snprintf(reason, cap, "%s; serving fp32", int8_problem);
        return sel;
    }
    if (!int8) {
        snprintf(reason, cap, "no int8 model; serving fp32");
        return sel;
    }
    octet_error e8 = {0};
    sel->int8 = octet_session_create(int8, &so, &e8);
    char why[200];
    if (!sel->int8) {
        snprintf(reason, cap, "int8 model %s: cannot create a session (%s); serving fp32", int8_label, e8.msg);
    } else if (io_mismatch(sel->fp32, sel->int8, why, sizeof why)) {
        snprintf(reason, cap, "int8 model %s does not match the fp32 model: %s; serving fp32", int8_label, why);
        octet_session_free(sel->int8);
        sel->int8 = NULL;
    } else {
        sel->stats.using_int8 = 1;
        if (period)
            snprintf(reason, cap, "serving int8 model %s, checked against fp32 on 1 request in %llu", int8_label,
                     (unsigned long long)period);
        else
            snprintf(reason, cap, "serving int8 model %s (no shadow validation)", int8_label);
    }
    return sel;
fail:
    if (sel) octet_session_free(sel->fp32);
    free(sel);
    octet_model_free(owned_fp32);
    octet_model_free(owned_int8);
    return NULL;
}

octet_selector *octet_selector_create_from_models(const octet_model *fp32, const octet_model *int8,
                                                  const octet_selector_options *opts, octet_error *err) {
    return create(NULL, NULL, fp32, int8, "(given model)", NULL, opts, err);
}

octet_selector *octet_selector_create(const char *fp32_path, const char *int8_path,
                                      const octet_selector_options *opts, octet_error *err) {
    if (!fp32_path) {
        oct_fail(err, OCTET_ERR_ARG, "the selector needs an fp32 model path");
        return NULL;
    }
    octet_model *fp32 = octet_model_load(fp32_path, err);
    if (!fp32) {
        oct_fail_context(err, "fp32 model '%s'", fp32_path);
        return NULL;
    }
    octet_model *int8 = NULL;
    char problem[256], label[160] = "";
    const char *int8_problem = NULL;
    if (int8_path) {
        snprintf(label, sizeof label, "'%s'", int8_path);
        octet_error e8 = {0};
        int8 = octet_model_load(int8_path, &e8);
        if (!int8) {
            snprintf(problem, sizeof problem, "int8 model '%s' cannot be loaded (%s)", int8_path, e8.msg);
            int8_problem = problem;
        }
    }
    return create(fp32, int8, fp32, int8, label, int8_problem, opts, err);
}

void octet_selector_free(octet_selector *sel) {
    if (!sel) return;
    octet_session_free(sel->int8);
    octet_session_free(sel->fp32);
    octet_model_free(sel->owned_int8);
    octet_model_free(sel->owned_fp32);
    pthread_mutex_destroy(&sel->lock);
    free(sel);
}

const octet_session *octet_selector_session(const octet_selector *sel) {
    return sel ? sel->fp32 : NULL;
}

/* ---- comparing an int8 answer with the fp32 one ---- */

/* Index of the largest of n values step apart; NaN ranks lowest. */
static int64_t argmax(const float *x, int64_t n, int64_t step) {
    int64_t best = 0;
    for (int64_t c = 1; c < n; c++) {
        float v = x[c * step], b = x[best * step];
        if (v > b || (isnan(b) && !isnan(v))) best = c;
    }
    return best;
}

/* Share of decision positions where the int8 output (a) and the fp32 output (ref) differ;
   1 when their dtypes or shapes differ. */
static double decision_difference(const octet_tensor *a, const octet_tensor *ref) {
    if (a->dtype != ref->dtype || a->rank != ref->rank) return 1.0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != ref->dims[d]) return 1.0;
    int64_t numel = octet_tensor_numel(ref);
    if (numel <= 0) return 0.0;
    int64_t differ = 0;
    if (ref->dtype != OCTET_FLOAT) {
        size_t es = octet_dtype_size(ref->dtype);
        for (int64_t i = 0; i < numel; i++)
            differ += memcmp((const char *)a->data + (size_t)i * es, (const char *)ref->data + (size_t)i * es, es) != 0;
        return (double)differ / (double)numel;
    }
    const float *x = a->data, *y = ref->data;
    int axis = ref->rank >= 2 ? 1 : 0;
    int64_t classes = ref->rank >= 1 ? ref->dims[axis] : 1;
    if (classes > 1) {
        int64_t outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= ref->dims[d];
        for (int d = axis + 1; d < ref->rank; d++) inner *= ref->dims[d];
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t base = o * classes * inner + i;
                differ += argmax(x + base, classes, inner) != argmax(y + base, classes, inner);
            }
        return (double)differ / (double)(outer * inner);
    }
    double scale = 0;
    for (int64_t i = 0; i < numel; i++)
        if (fabs((double)y[i]) > scale) scale = fabs((double)y[i]);
    double tol = VALUE_TOLERANCE * scale;
    for (int64_t i = 0; i < numel; i++) differ += !(fabs((double)x[i] - (double)y[i]) <= tol);
    return (double)differ / (double)numel;
}

/* Runs fp32 on the request for outputs[0]'s name and compares. Returns 1 on disagreement, 0 on
   agreement, -1 when the fp32 run failed. */
static int shadow_check(octet_selector *sel, int n_in, const char *const *in_names, const octet_tensor *inputs,
                        const char *const *out_names, const octet_tensor *int8_out) {
    const char *name = out_names ? out_names[0] : NULL;
    if (!name) octet_session_output_info(sel->fp32, 0, &name, NULL, NULL, NULL);
    octet_tensor ref = {0};
    octet_error e = {0};
    if (octet_session_run(sel->fp32, n_in, in_names, inputs, 1, &name, &ref, &e)) return -1;
    int disagree = decision_difference(int8_out, &ref) > POSITION_TOLERANCE;
    octet_tensor_release(&ref);
    return disagree;
}

/* ---- serving ---- */

/* Called with the lock held: gives up int8 for good. */
static void switch_to_fp32(octet_selector *sel, const char *why) {
    if (!sel->stats.using_int8) return;
    sel->stats.using_int8 = 0;
    snprintf(sel->stats.reason, sizeof sel->stats.reason, "%s; serving fp32", why);
}

static void record_shadow(octet_selector *sel, int disagree) {
    pthread_mutex_lock(&sel->lock);
    octet_selector_stats *st = &sel->stats;
    st->shadow_runs++;
    st->disagreements += (uint64_t)disagree;
    double rate = (double)st->disagreements / (double)st->shadow_runs;
    if (st->using_int8 && st->shadow_runs >= sel->min_shadow_runs && rate > sel->max_disagreement) {
        char why[200];
        snprintf(why, sizeof why, "int8 disagreed with fp32 on %llu of %llu shadow runs (%.1f%% > %.1f%%)",
                 (unsigned long long)st->disagreements, (unsigned long long)st->shadow_runs, 100.0 * rate,
                 100.0 * sel->max_disagreement);
        switch_to_fp32(sel, why);
    }
    pthread_mutex_unlock(&sel->lock);
}

int octet_selector_run(octet_selector *sel, int n_in, const char *const *in_names, const octet_tensor *inputs,
                       int n_out, const char *const *out_names, octet_tensor *outputs, octet_error *err) {
    if (!sel) return oct_fail(err, OCTET_ERR_ARG, "no selector");
    pthread_mutex_lock(&sel->lock);
    uint64_t index = sel->stats.requests++;
    bool use_int8 = sel->stats.using_int8 && sel->int8;
    bool shadow = use_int8 && n_out > 0 && sel->shadow_period && index % sel->shadow_period == 0;
    pthread_mutex_unlock(&sel->lock);

    octet_error e8 = {0};
    if (use_int8) {
        if (octet_session_run(sel->int8, n_in, in_names, inputs, n_out, out_names, outputs, &e8) == 0) {
            int disagree = shadow ? shadow_check(sel, n_in, in_names, inputs, out_names, &outputs[0]) : -1;
            if (disagree >= 0) record_shadow(sel, disagree);
            pthread_mutex_lock(&sel->lock);
            sel->stats.int8_runs++;
            pthread_mutex_unlock(&sel->lock);
            return 0;
        }
    }
    int rc = octet_session_run(sel->fp32, n_in, in_names, inputs, n_out, out_names, outputs, err);
    pthread_mutex_lock(&sel->lock);
    if (rc) {
        sel->stats.failed++;
    } else {
        sel->stats.fp32_runs++;
        /* fp32 answered what int8 could not: the int8 model is at fault, not the request */
        if (use_int8) {
            char why[200];
            snprintf(why, sizeof why, "an int8 run failed (%s)", e8.msg);
            switch_to_fp32(sel, why);
        }
    }
    pthread_mutex_unlock(&sel->lock);
    return rc;
}

int octet_selector_stats_get(const octet_selector *sel, octet_selector_stats *stats) {
    if (!sel || !stats) return -1;
    /* the lock is not part of the selector's observable state */
    pthread_mutex_t *lock = (pthread_mutex_t *)&sel->lock;
    pthread_mutex_lock(lock);
    *stats = sel->stats;
    pthread_mutex_unlock(lock);
    return 0;
}
