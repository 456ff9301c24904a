/* A loaded model: the graph as read from the file, never modified after load except that the
   bytes of constant weights may be released and re-read (see model_weights.c). */
#ifndef OCT_MODEL_H
#define OCT_MODEL_H

#include <pthread.h>
#include <stddef.h>

#include "graph.h"
#include "loader.h"
#include "plan.h"

struct octet_model {
    oct_graph *graph;
    /* Weights a plan has packed (or folded) need not stay in memory: when the model came from a
       file, the read-only mapping stays open (its pages are not resident) and a released
       initializer is copied back from it before the next plan is built. */
    pthread_mutex_t weights_lock;
    const void *map;              /* the file mapping, or NULL: nothing is released */
    size_t map_size;
    oct_pb_slice *sources;        /* per value of graph: where its bytes lie in map */
    int *pins;                    /* per value: plans that read its bytes at run time */
    unsigned char *released;      /* per value: bytes freed, to re-read from map */
    bool keep_weights;            /* set by oct_model_keep_weights: never release again */
};

/* For code that reads the model's graph itself (quantize, writers, tests) rather than through a
   session: reads every released weight back and keeps them all from now on. Returns 0 or -1. */
int oct_model_keep_weights(const octet_model *m, octet_error *err);

/* Building a plan from the model's graph, for sessions: every released weight is read back,
   the plan built, the weights its nodes read at run time pinned, and the others released. */
oct_plan *oct_model_plan(const octet_model *m, const oct_shape *shapes, const octet_tensor *const *values, int batch,
                         uint64_t *needed, octet_error *err);
/* Unpins a plan's weights and frees the plan. */
void oct_model_plan_free(const octet_model *m, oct_plan *p);
/* Frees what load_buffer set up besides the graph. */
void oct_model_weights_free(octet_model *m);

#endif
