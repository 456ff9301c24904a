/* The ONNX writer's building blocks: the allocation arena, the set of names in use, and
   TensorProto messages for constants. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_write_internal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raw_data is little-endian; octet supports little-endian hosts only"
#endif

void *owx_alloc(oct_wctx *c, size_t n) {
    if (c->n_allocs == c->cap_allocs) {
        size_t cap = c->cap_allocs ? c->cap_allocs * 2 : 256;
        void **a = realloc(c->allocs, cap * sizeof *a);
        if (!a) {
            oct_fail(c->err, OCTET_ERR_NOMEM, "out of memory writing the ONNX model");
            return NULL;
        }
        c->allocs = a;
        c->cap_allocs = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        oct_fail(c->err, OCTET_ERR_NOMEM, "out of memory writing the ONNX model");
        return NULL;
    }
    c->allocs[c->n_allocs++] = p;
    return p;
}

char *owx_strdup(oct_wctx *c, const char *s) {
    size_t n = strlen(s);
    char *d = owx_alloc(c, n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static size_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

/* Slot holding name, or the empty slot where it would go. */
static size_t name_slot(const oct_wctx *c, const char *name) {
    size_t mask = c->names_cap - 1, i = hash_name(name) & mask;
    while (c->names[i] && strcmp(c->names[i], name) != 0) i = (i + 1) & mask;
    return i;
}

static int names_grow(oct_wctx *c) {
    size_t cap = c->names_cap ? c->names_cap * 2 : 1024;
    const char **old = c->names;
    size_t old_cap = c->names_cap;
    c->names = calloc(cap, sizeof *c->names);
    if (!c->names) {
        c->names = old;
        return oct_fail(c->err, OCTET_ERR_NOMEM, "out of memory writing the ONNX model");
    }
    c->names_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i]) c->names[name_slot(c, old[i])] = old[i];
    free(old);
    return 0;
}

int owx_name_take(oct_wctx *c, const char *name) {
    if ((c->names_count + 1) * 2 > c->names_cap && names_grow(c)) return -1;
    size_t i = name_slot(c, name);
    if (!c->names[i]) {
        c->names[i] = name;
        c->names_count++;
    }
    return 0;
}

static bool name_taken(const oct_wctx *c, const char *name) {
    return c->names_cap && c->names[name_slot(c, name)];
}

char *owx_fresh_name(oct_wctx *c, const char *base, const char *suffix) {
    size_t len = strlen(base) + strlen(suffix) + 24;
    char *s = owx_alloc(c, len);
    if (!s) return NULL;
    snprintf(s, len, "%s%s", base, suffix);
    for (unsigned k = 1; name_taken(c, s); k++) snprintf(s, len, "%s%s_%u", base, suffix, k);
    return owx_name_take(c, s) ? NULL : s;
}

static bool dtype_writable(int dt) {
    return dt == OCTET_FLOAT || dt == OCTET_UINT8 || dt == OCTET_INT8 || dt == OCTET_INT32 ||
           dt == OCTET_INT64 || dt == OCTET_BOOL;
}

Onnx__TensorProto *owx_tensor(oct_wctx *c, const char *name, int dtype, int rank, const int64_t *dims,
                              const void *data, const char *what) {
    if (!dtype_writable(dtype)) {
        oct_fail(c->err, OCTET_ERR_UNSUPPORTED, "%s '%s' has data type %d, which octet cannot write to ONNX",
                 what, name, dtype);
        return NULL;
    }
    if (rank < 0 || rank > OCTET_MAX_RANK) {
        oct_fail(c->err, OCTET_ERR_FORMAT, "%s '%s' has no valid shape (rank %d)", what, name, rank);
        return NULL;
    }
    uint64_t bytes = octet_dtype_size((octet_dtype)dtype);
    for (int d = 0; d < rank; d++) {
        if (dims[d] < 0 || (dims[d] && bytes > UINT64_MAX / (uint64_t)dims[d])) {
            oct_fail(c->err, OCTET_ERR_FORMAT, "%s '%s' has an invalid dimension %" PRId64 " at axis %d",
                     what, name, dims[d], d);
            return NULL;
        }
        bytes *= (uint64_t)dims[d];
    }
    if (bytes > SIZE_MAX / 2 || (bytes && !data)) {
        oct_fail(c->err, OCTET_ERR_FORMAT, "%s '%s' has %s", what, name, data ? "too many elements" : "no data");
        return NULL;
    }
    Onnx__TensorProto *t = owx_alloc(c, sizeof *t);
    int64_t *d = owx_alloc(c, sizeof(int64_t) * ((size_t)rank + 1));
    char *nm = owx_strdup(c, name);
    if (!t || !d || !nm) return NULL;
    onnx__tensor_proto__init(t);
    t->name = nm;
    t->has_data_type = 1;
    t->data_type = dtype;
    if (rank) memcpy(d, dims, sizeof(int64_t) * (size_t)rank);
    t->n_dims = (size_t)rank;
    t->dims = d;
    /* raw_data is always set, even when empty, so a reader never mistakes it for a typed field */
    t->has_raw_data = 1;
    t->raw_data.len = (size_t)bytes;
    t->raw_data.data = (uint8_t *)(uintptr_t)data; /* borrowed: packing only reads it */
    return t;
}

int owx_initializer(oct_wctx *c, int v) {
    if (c->is_init[v]) return 0;
    const oct_value *val = &c->g->values[v];
    if (c->n_inits == c->cap_inits)
        return oct_fail(c->err, OCTET_ERR_INTERNAL, "initializer list overflow at '%s'", val->name);
    Onnx__TensorProto *t = owx_tensor(c, val->name, (int)val->dtype, val->rank, val->dims, val->data, "constant");
    if (!t) return -1;
    c->inits[c->n_inits++] = t;
    c->is_init[v] = true;
    return 0;
}

Onnx__NodeProto *owx_node(oct_wctx *c, const char *name, const char *op_type, const char *domain,
                          size_t n_in, size_t n_out, size_t n_attr) {
    if (c->n_nodes == c->cap_nodes) {
        oct_fail(c->err, OCTET_ERR_INTERNAL, "node list overflow at '%s'", name);
        return NULL;
    }
    Onnx__NodeProto *np = owx_alloc(c, sizeof *np);
    char **in = owx_alloc(c, (n_in + 1) * sizeof(char *));
    char **out = owx_alloc(c, (n_out + 1) * sizeof(char *));
    Onnx__AttributeProto **attrs = owx_alloc(c, (n_attr + 1) * sizeof *attrs);
    char *nm = owx_strdup(c, name), *ot = owx_strdup(c, op_type), *dom = owx_strdup(c, domain ? domain : "");
    if (!np || !in || !out || !attrs || !nm || !ot || !dom) return NULL;
    onnx__node_proto__init(np);
    np->name = nm;
    np->op_type = ot;
    np->domain = dom;
    np->input = in;
    np->n_input = n_in;
    np->output = out;
    np->n_output = n_out;
    np->attribute = attrs; /* n_attribute grows as they are filled */
    c->nodes[c->n_nodes++] = np;
    return np;
}
