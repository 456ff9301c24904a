/* `octet inspect`: the planned graph as text or JSON. */
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "op.h"
#include "passes/passes.h"
#include "plan.h"

/* Reaches the main plan without exposing the session layout. */
const oct_plan *oct_session_plan(const octet_session *s);

static const char *act_name(oct_act_kind k) {
    static const char *const names[] = {"", "Relu", "Clip", "LeakyRelu", "Sigmoid", "SiLU",
                                        "HardSwish", "HardSigmoid", "Tanh"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static void print_shape(FILE *f, const oct_value *v) {
    fputc('[', f);
    for (int d = 0; d < v->rank; d++) fprintf(f, "%s%lld", d ? "," : "", (long long)v->dims[d]);
    fputc(']', f);
}

static void print_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* Inputs of node n the memory plan placed inside its first output (Concat elision, memplan.c). */
static int inputs_in_place(const oct_graph *g, const oct_node *n) {
    if (n->n_out < 1 || n->out[0] < 0 || !g->values[n->out[0]].planned) return 0;
    const oct_value *y = &g->values[n->out[0]];
    const size_t lo = y->arena_offset, hi = lo + (size_t)oct_value_numel(y) * octet_dtype_size(y->dtype);
    int count = 0;
    for (int j = 0; j < n->n_in; j++) {
        if (n->in[j] < 0 || n->in[j] == n->out[0]) continue;
        const oct_value *x = &g->values[n->in[j]];
        count += x->planned && x->arena_offset >= lo && x->arena_offset < hi;
    }
    return count;
}

static void describe_text(FILE *f, const oct_plan *p) {
    const oct_graph *g = p->g;
    const bool quantized = oct_graph_is_quantized(g);
    int int8_nodes = 0;
    fprintf(f, "graph '%s' (opset %lld): %d nodes after passes\n", g->name ? g->name : "",
            (long long)g->opset, p->n_exec);
    for (int k = 0; k < p->n_exec; k++) {
        const oct_node *n = &g->nodes[p->exec[k]];
        const char *prec = oct_node_precision(g, n);
        int8_nodes += strcmp(prec, "int8") == 0;
        fprintf(f, "%4d  %-20s %-24s %-7s", k, n->op_type, n->name, prec);
        if (n->fused) fprintf(f, "  fused: %s", n->fused);
        else if (n->epi.act) fprintf(f, "  fused: %s", act_name(n->epi.act));
        /* In a quantized model, say why a node stays fp32. */
        if (quantized && strcmp(prec, "fp32") == 0)
            fprintf(f, "  (fp32: %s)", n->why_fp32 ? n->why_fp32 : "outside the quantized part of the graph");
        fprintf(f, "\n      ");
        for (int j = 0; j < n->n_in; j++) {
            if (n->in[j] < 0) continue;
            const oct_value *v = &g->values[n->in[j]];
            if (v->kind == OCT_VAL_CONST) fprintf(f, "const");
            print_shape(f, v);
            fputc(' ', f);
        }
        fprintf(f, "-> ");
        for (int j = 0; j < n->n_out; j++)
            if (n->out[j] >= 0) {
                print_shape(f, &g->values[n->out[j]]);
                fputc(' ', f);
            }
        if (n->workspace_bytes) fprintf(f, " workspace %zu B", n->workspace_bytes);
        const int in_place = inputs_in_place(g, n);
        if (in_place) fprintf(f, " (%d of %d inputs written in place by their producers)", in_place, n->n_in);
        fputc('\n', f);
    }
    if (quantized) fprintf(f, "precision: %d of %d nodes run int8\n", int8_nodes, p->n_exec);
    fprintf(f, "memory plan: arena %.2f MB, weights %.2f MB, inputs+outputs %.2f MB, peak %.2f MB\n",
            p->arena_bytes / 1048576.0, p->weight_bytes / 1048576.0, p->io_bytes / 1048576.0,
            p->peak_bytes / 1048576.0);
}

static void json_shapes(FILE *f, const oct_graph *g, const int *vals, int n) {
    fputc('[', f);
    int first = 1;
    for (int j = 0; j < n; j++) {
        if (vals[j] < 0) continue;
        fprintf(f, "%s", first ? "" : ",");
        first = 0;
        print_shape(f, &g->values[vals[j]]);
    }
    fputc(']', f);
}

static void describe_json(FILE *f, const oct_plan *p) {
    const oct_graph *g = p->g;
    fprintf(f, "{\"graph\":");
    print_json_string(f, g->name ? g->name : "");
    fprintf(f, ",\"opset\":%lld,\"nodes\":[", (long long)g->opset);
    for (int k = 0; k < p->n_exec; k++) {
        const oct_node *n = &g->nodes[p->exec[k]];
        fprintf(f, "%s{\"name\":", k ? "," : "");
        print_json_string(f, n->name);
        fprintf(f, ",\"op\":");
        print_json_string(f, n->op_type);
        const char *prec = oct_node_precision(g, n);
        fprintf(f, ",\"precision\":\"%s\"", prec);
        if (strcmp(prec, "fp32") == 0 && n->why_fp32) {
            fprintf(f, ",\"why_fp32\":");
            print_json_string(f, n->why_fp32);
        }
        fprintf(f, ",\"fused\":");
        print_json_string(f, n->fused ? n->fused : "");
        fprintf(f, ",\"epilogue\":");
        print_json_string(f, act_name(n->epi.act));
        fprintf(f, ",\"residual\":%s,\"inputs\":", n->epi.residual >= 0 ? "true" : "false");
        json_shapes(f, g, n->in, n->n_in);
        fprintf(f, ",\"outputs\":");
        json_shapes(f, g, n->out, n->n_out);
        fprintf(f, ",\"workspace_bytes\":%zu,\"inputs_in_place\":%d}", n->workspace_bytes, inputs_in_place(g, n));
    }
    fprintf(f, "],\"memory\":{\"arena_bytes\":%zu,\"weight_bytes\":%zu,\"io_bytes\":%zu,\"peak_bytes\":%zu}}\n",
            p->arena_bytes, p->weight_bytes, p->io_bytes, p->peak_bytes);
}

int octet_session_describe(const octet_session *s, void *file, int json) {
    if (!s || !file) return -1;
    const oct_plan *p = oct_session_plan(s);
    if (!p) {
        fprintf(file, json ? "{\"deferred\":\"the plan waits for input values that fix shapes\"}\n"
                           : "the plan waits for input values that fix shapes (planned at the first run)\n");
        return 0;
    }
    if (json) describe_json(file, p);
    else describe_text(file, p);
    return 0;
}
