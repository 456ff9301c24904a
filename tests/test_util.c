#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *test_shared_dir(void) {
    const char *s = getenv("OCTET_SHARED");
    return s && *s ? s : "../shared";
}

const char *test_source_root(void) {
    const char *s = getenv("OCTET_SOURCE_ROOT");
    return s && *s ? s : ".";
}

void test_use_isa(oct_isa isa) {
    setenv("OCTET_ISA", oct_isa_name(isa), 1);
    oct_kernels_reset();
}

void test_default_isa(void) {
    unsetenv("OCTET_ISA");
    oct_kernels_reset();
}

char *test_write_temp(const void *bytes, size_t n, const char *suffix) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    size_t len = strlen(dir) + strlen(suffix) + 32;
    char *path = malloc(len);
    if (!path) return NULL;
    snprintf(path, len, "%s/octet-test-XXXXXX%s", dir, suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0) { free(path); return NULL; }
    if (n && write(fd, bytes, n) != (ssize_t)n) { close(fd); free(path); return NULL; }
    close(fd);
    return path;
}

int64_t test_numel(int rank, const int64_t *dims) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    return n;
}

void test_push_int(int **arr, int *n, int v) {
    *arr = realloc(*arr, sizeof(int) * (size_t)(*n + 1));
    (*arr)[(*n)++] = v;
}

int test_graph_input(oct_graph *g, const char *name, octet_dtype dt, int rank, const int64_t *dims) {
    int v = oct_graph_add_value(g, name, NULL);
    oct_value *val = &g->values[v];
    val->kind = OCT_VAL_INPUT;
    val->dtype = dt;
    val->rank = rank;
    if (rank) memcpy(val->dims, dims, sizeof(int64_t) * (size_t)rank);
    test_push_int(&g->inputs, &g->n_inputs, v);
    return v;
}

int test_graph_const(oct_graph *g, const char *name, octet_dtype dt, int rank, const int64_t *dims,
                     const void *data) {
    int v = oct_graph_add_value(g, name, NULL);
    const size_t bytes = (size_t)test_numel(rank, dims) * octet_dtype_size(dt);
    void *d = malloc(bytes > 0 ? bytes : 1);
    memcpy(d, data, bytes);
    oct_value_set_const(&g->values[v], dt, rank, dims, d);
    return v;
}

int test_graph_f32(oct_graph *g, const char *name, float v) {
    return test_graph_const(g, name, OCTET_FLOAT, 0, NULL, &v);
}

/* Test helpers stop the test program on an allocation failure: nothing sensible follows. */
static void *checked(void *p) {
    if (!p) {
        fprintf(stderr, "test_util: out of memory\n");
        abort();
    }
    return p;
}

int test_graph_node(oct_graph *g, const char *domain, const char *type, int n_in, const int *in) {
    const int k = oct_graph_add_node(g, type, type, domain, n_in, 1, NULL);
    if (k < 0) checked(NULL);
    memcpy(g->nodes[k].in, in, sizeof(int) * (size_t)n_in);
    char name[64];
    snprintf(name, sizeof name, "%s_%d_out", type, k);
    g->nodes[k].out[0] = oct_graph_add_value(g, name, NULL);
    return k;
}

int test_graph_node_out(oct_graph *g, const char *domain, const char *type, int n_in, const int *in) {
    const int k = test_graph_node(g, domain, type, n_in, in);
    return g->nodes[k].out[0];
}

static oct_attr *new_attr(oct_graph *g, int k, const char *name, oct_attr_type type) {
    oct_node *n = &g->nodes[k];
    n->attrs = checked(realloc(n->attrs, sizeof(oct_attr) * (size_t)(n->n_attr + 1)));
    oct_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = checked(strdup(name));
    a->type = type;
    return a;
}

void test_attr_float(oct_graph *g, int k, const char *name, float v) {
    new_attr(g, k, name, OCT_ATTR_FLOAT)->f = v;
}

void test_attr_string(oct_graph *g, int k, const char *name, const char *v) {
    new_attr(g, k, name, OCT_ATTR_STRING)->s = checked(strdup(v));
}

void test_attr_ints_fill(oct_graph *g, int k, const char *name, int n, int64_t v) {
    if (n == 0) {
        new_attr(g, k, name, OCT_ATTR_INT)->i = v;
        return;
    }
    oct_attr *a = new_attr(g, k, name, OCT_ATTR_INTS);
    a->n = n;
    a->ints = checked(malloc(sizeof(int64_t) * (size_t)n));
    for (int i = 0; i < n; i++) a->ints[i] = v;
}

void test_attr_ints(oct_graph *g, int k, const char *name, int n, const int64_t *v) {
    oct_attr *a = new_attr(g, k, name, OCT_ATTR_INTS);
    a->n = n;
    a->ints = checked(malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1)));
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

void test_random_requant(int (*rin)(int lo, int hi), int rows, float unit, int per_row, int with_bias, int out_s8,
                         int narrow, float *scale, int32_t *bias, oct_requant *q) {
    for (int r = 0; r < rows; r++) {
        scale[r] = (float)rin(1, 100000) * unit;
        bias[r] = rin(-50000, 50000);
    }
    *q = (oct_requant){scale, per_row, with_bias ? bias : NULL, 0, 0, 0, out_s8, NULL};
    q->zp = out_s8 ? rin(-128, 127) : rin(0, 255);
    q->qmin = out_s8 ? -128 : 0;
    q->qmax = out_s8 ? 127 : 255;
    if (narrow) {
        q->qmin = q->zp;
        q->qmax = q->qmin + (q->qmax - q->qmin) / 2;
    }
}
