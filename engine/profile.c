/* Per-node timing: the run loop (session.c) adds each node's wall time to an oct_profile; this
   file owns the buffer and names the nodes for printing. */
#include "profile.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "passes/passes.h"
#include "plan.h"

double oct_profile_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int oct_profile_bind(oct_profile *prof, const oct_plan *plan, octet_error *err) {
    if (prof->plan == plan && prof->node_ms) return 0;
    double *ms = calloc(plan->n_exec > 0 ? (size_t)plan->n_exec : 1, sizeof *ms);
    if (!ms) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory for the profile of %d nodes", plan->n_exec);
    free(prof->node_ms);
    prof->node_ms = ms;
    prof->n_nodes = plan->n_exec;
    prof->plan = plan;
    prof->runs = 0;
    return 0;
}

void oct_profile_free(oct_profile *prof) {
    if (!prof) return;
    free(prof->node_ms);
    memset(prof, 0, sizeof *prof);
}

/* An activation fused into the write-back without a note in n->fused. */
static const char *act_name(oct_act_kind k) {
    static const char *const names[] = {"", "Relu", "Clip", "LeakyRelu", "Sigmoid", "SiLU",
                                        "HardSwish", "HardSigmoid", "Tanh"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

int oct_profile_node_info(const oct_profile *prof, int k, oct_profile_node *info) {
    if (!prof || !prof->plan || k < 0 || k >= prof->n_nodes) return -1;
    const oct_graph *g = prof->plan->g;
    const oct_node *n = &g->nodes[prof->plan->exec[k]];
    info->name = n->name ? n->name : "";
    info->op_type = n->op_type;
    info->precision = oct_node_precision(g, n);
    info->fused = n->fused ? n->fused : act_name(n->epi.act);
    info->ms = prof->node_ms[k];
    return 0;
}
