/* Per-node wall time of session runs, for `octet bench --profile`. Internal API: the node
   information it hands out points into the session's plan and lives as long as the session. */
#ifndef OCT_PROFILE_H
#define OCT_PROFILE_H

#include "octet.h"

struct oct_plan;

/* Start zeroed ({0}); free with oct_profile_free. Not shared between concurrent runs. */
typedef struct {
    const struct oct_plan *plan; /* the plan node_ms refers to: the one the last run used */
    double *node_ms;             /* per executed node, in execution order, summed over runs */
    int n_nodes;
    int runs;                    /* runs summed into node_ms */
} oct_profile;

/* octet_session_run (into: octet_session_run_into) that also adds each node's wall time to prof
   (NULL: no timing). A run on another plan than prof->plan (another input shape) starts prof
   over for that plan. */
int oct_session_run_profiled(octet_session *s, int n_in, const char *const *in_names,
                             const octet_tensor *inputs, int n_out, const char *const *out_names,
                             octet_tensor *outputs, int into, oct_profile *prof, octet_error *err);

/* Points prof at plan, zeroing the times when the plan changes (called by the run). */
int oct_profile_bind(oct_profile *prof, const struct oct_plan *plan, octet_error *err);
void oct_profile_free(oct_profile *prof);

/* CLOCK_MONOTONIC in milliseconds. */
double oct_profile_now_ms(void);

typedef struct {
    const char *name;
    const char *op_type;
    const char *precision; /* "int8", "fp32", "quant", "dequant" */
    const char *fused;     /* what was fused into the node ("BatchNormalization+Relu"), or "" */
    double ms;             /* summed over prof->runs */
} oct_profile_node;

/* Node k (0 <= k < prof->n_nodes) of the profiled plan; returns 0, or -1 if k is out of range. */
int oct_profile_node_info(const oct_profile *prof, int k, oct_profile_node *info);

#endif
