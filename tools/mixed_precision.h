/* Automatic mixed precision for `octet quantize --target-drop`: when the int8 model fails the
   clinical gate of `octet validate` (evaluate.h) on validation data, keep the layers that lose the
   most precision in fp32, one more at a time then by bisection, re-validating every candidate,
   until the gate passes or a limit of fp32 layers is hit.

   A "layer" is the node that computes one quantized activation tensor. Keeping it in fp32 keeps
   its activation inputs and its output in float too: the error a layer shows is often not in its
   weights but in the 8-bit rounding of what it reads or writes (a range clipped by entropy
   calibration, or stretched by one outlier channel so that the others vanish in the rounding).
   A tensor stays float only when its producer and every node that reads it run fp32 (any int8
   neighbour quantizes it), so the fp32 nodes are that closure.

   Layers are ranked by the SQNR the report measures (int8 vs fp32, on calibration data): SQNR is
   cumulative along the network, so the rank is by the loss across each layer, the SQNR of its
   worst input minus that of its output (an input that is not quantized is traced up to the
   quantized tensors it comes from; a graph input counts as the best SQNR measured anywhere).
   The ranking is only a guess; the gate decides. */
#ifndef OCT_MIXED_PRECISION_H
#define OCT_MIXED_PRECISION_H

#include <stdbool.h>
#include <stdio.h>

#include "calibrate.h"
#include "evaluate.h"

/* A QDQ model of calibration result r with the nodes in exclude kept fp32: inserted into a copy
   of r's network, written to path and loaded back. quantized/params/n (may be NULL) receive what
   oct_qdq_insert reports. */
int oct_qdq_model_build(const oct_calib_result *r, const char *const *exclude, int n_exclude, const char *path,
                        octet_model **model, int **quantized, oct_qparam **params, int *n, octet_error *err);

typedef struct {
    const char *node;   /* the layer (owned by the calibration network) */
    const char *tensor; /* its quantized output */
    double sqnr_in, sqnr_out, loss_db;
} oct_mp_layer;

/* Ranks the producers of the quantized tensors (names[k], SQNR sqnr_db[k]) of network g, the
   largest loss first. *layers is malloc'ed. */
int oct_mp_rank(const oct_graph *g, int n_tensors, const char *const *names, const double *sqnr_db,
                oct_mp_layer **layers, int *n_layers, octet_error *err);

/* The nodes that run fp32 when layers[0..k) are kept fp32 (for each layer, the producers and
   readers of its activation inputs and of its output), after the user's own exclusions;
   deduplicated. *nodes is malloc'ed, names borrowed. */
int oct_mp_fp32_nodes(const oct_graph *g, const oct_mp_layer *layers, int k, const char *const *user_exclude,
                      int n_user, const char ***nodes, int *n_nodes, octet_error *err);

typedef struct {
    int layers, nodes; /* layers kept fp32 (a prefix of the ranking), nodes that run fp32 */
    bool approved;
    double worst_drop;
    int worst_class;
    double headline; /* accuracy % or mean Dice */
} oct_mp_attempt;

#define OCT_MP_MAX_ATTEMPTS 64

typedef struct {
    /* inputs */
    const oct_calib_result *calib;
    const char *out_path; /* candidates are written next to it, then removed */
    const char *const *user_exclude;
    int n_user_exclude;
    const oct_dataset *val;
    int64_t n_val;
    double max_drop, max_dice_drop;
    int max_layers, batch, threads;
    bool progress;
    /* results */
    oct_mp_layer *ranked;
    int n_ranked;
    oct_mp_attempt attempts[OCT_MP_MAX_ATTEMPTS];
    int n_attempts;
    bool approved;
    int kept;                 /* layers kept fp32 in the approved model */
    const char **fp32_nodes;  /* the nodes that run fp32 in it */
    int n_fp32_nodes;
    oct_eval ref, int8, final; /* fp32, all-int8 and approved model over the validation data */
    bool have_final;
    int timed_images;
    double ms_fp32, ms_int8, ms_final; /* batch 1, best of a few rounds */
} oct_mp_search;

/* Evaluates fp32 (model) and the all-int8 model (int8, already built) on the validation data;
   when int8 fails the gate, ranks the layers (names/sqnr_db: the report's tensors) and searches.
   On return s->approved says whether a model passed (the all-int8 one when kept == 0); the caller
   writes it. Then times fp32, int8 and the approved model. Free with oct_mp_search_free. */
int oct_mp_run(oct_mp_search *s, const octet_model *model, const octet_model *int8, int n_tensors,
               const char *const *names, const double *sqnr_db, octet_error *err);
void oct_mp_search_free(oct_mp_search *s);

/* The terminal summary and the "mixed_precision" member of the JSON report. */
void oct_mp_print(const oct_mp_search *s, const char *const *class_names, int n_class_names);
void oct_mp_json(FILE *f, const oct_mp_search *s);

#endif
