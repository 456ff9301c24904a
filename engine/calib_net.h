/* The calibration network: the fp32 plan of a model (BatchNorm folded, Relu/Clip fused into their
   producer) with the epilogues that cannot stay fused in a QDQ model split out again (a residual
   Add, Sigmoid, SiLU, ...), so that every tensor the QDQ model quantizes exists and can be
   observed. Also a run loop that calls an observer after every node. */
#ifndef OCT_CALIB_NET_H
#define OCT_CALIB_NET_H

#include "plan.h"

typedef struct {
    oct_plan *plan; /* owns the constants the graph borrows */
    oct_graph *g;   /* the explicit graph, inferred; nodes run in g->order */
} oct_calib_net;

/* Builds the network for inputs of these shapes (one per graph input, graph order). */
int oct_calib_net_build(oct_calib_net *net, const oct_graph *model, const octet_tensor *inputs, octet_error *err);
void oct_calib_net_free(oct_calib_net *net);

/* Called after each node for each of its outputs; value is the value index in the graph run. */
typedef void (*oct_observe_fn)(void *user, int value, const octet_tensor *t);

/* Runs the live nodes of an inferred graph in `order` (n nodes), every activation in its own
   buffer, calling observe (may be NULL) after each node. inputs: one per graph input, graph order.
   outputs (may be NULL): receives malloc'ed copies of the graph outputs. */
int oct_graph_run_observed(const oct_graph *g, const int *order, int n, const octet_tensor *inputs, int threads,
                           oct_observe_fn observe, void *user, octet_tensor *outputs, octet_error *err);
int oct_calib_net_run(const oct_calib_net *net, const octet_tensor *inputs, int threads, oct_observe_fn observe,
                      void *user, octet_tensor *outputs, octet_error *err);

#endif
