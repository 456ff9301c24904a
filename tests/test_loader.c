/* The loader: ONNX parsing (valid, corrupt and hostile models, external data), .npy and
   TensorProto files. Bad input must give an error, never a crash or a leak (CI runs ASan). */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"

#include "engine/graph.h"
#include "engine/model.h"
#include "loader/loader.h"
#include "test_session.h"
#include "test_util.h"

/* ---- building models with protobuf-c (everything malloc'ed, freed by free_unpacked) ---- */

static char *sdup(const char *s) {
    char *d = malloc(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

#define PUSH(arr, n, item)                                        \
    do {                                                          \
        (arr) = realloc((arr), ((n) + 1) * sizeof *(arr));        \
        (arr)[(n)++] = (item);                                    \
    } while (0)

static Onnx__TensorProto *mk_tensor(const char *name, int dt, int rank, const int64_t *dims,
                                    const void *raw, size_t rawlen) {
    Onnx__TensorProto *t = malloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = sdup(name);
    t->has_data_type = 1;
    t->data_type = dt;
    t->n_dims = (size_t)rank;
    t->dims = malloc(sizeof(int64_t) * (size_t)(rank + 1));
    if (rank) memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    if (raw) {
        t->has_raw_data = 1;
        t->raw_data.len = rawlen;
        t->raw_data.data = malloc(rawlen + 1);
        memcpy(t->raw_data.data, raw, rawlen);
    }
    return t;
}

/* dims < 0 become the symbolic dimension "N" */
static Onnx__ValueInfoProto *mk_vi(const char *name, int dt, int rank, const int64_t *dims) {
    Onnx__ValueInfoProto *vi = malloc(sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = sdup(name);
    vi->type = malloc(sizeof *vi->type);
    onnx__type_proto__init(vi->type);
    vi->type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    Onnx__TypeProto__Tensor *tt = malloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = dt;
    if (rank >= 0) {
        tt->shape = malloc(sizeof *tt->shape);
        onnx__tensor_shape_proto__init(tt->shape);
        for (int i = 0; i < rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = malloc(sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            if (dims[i] >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            } else {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = sdup("N");
            }
            PUSH(tt->shape->dim, tt->shape->n_dim, d);
        }
    }
    vi->type->tensor_type = tt;
    return vi;
}

/* ins/outs: space-separated names; "_" stands for an omitted (empty) name */
static Onnx__NodeProto *mk_node(const char *name, const char *op, const char *ins, const char *outs) {
    Onnx__NodeProto *n = malloc(sizeof *n);
    onnx__node_proto__init(n);
    n->name = sdup(name);
    n->op_type = sdup(op);
    for (int k = 0; k < 2; k++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", k ? outs : ins);
        for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
            char *s = sdup(strcmp(tok, "_") ? tok : "");
            if (k) PUSH(n->output, n->n_output, s);
            else PUSH(n->input, n->n_input, s);
        }
    }
    return n;
}

static Onnx__AttributeProto *mk_attr(Onnx__NodeProto *n, const char *name, int type) {
    Onnx__AttributeProto *a = malloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = sdup(name);
    a->has_type = 1;
    a->type = type;
    PUSH(n->attribute, n->n_attribute, a);
    return a;
}

static Onnx__ModelProto *mk_model(int64_t opset) {
    Onnx__ModelProto *m = malloc(sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = 8;
    m->graph = malloc(sizeof *m->graph);
    onnx__graph_proto__init(m->graph);
    m->graph->name = sdup("test");
    Onnx__OperatorSetIdProto *o = malloc(sizeof *o);
    onnx__operator_set_id_proto__init(o);
    o->domain = sdup("");
    o->has_version = 1;
    o->version = opset;
    PUSH(m->opset_import, m->n_opset_import, o);
    return m;
}

static void *pack(Onnx__ModelProto *m, size_t *size) {
    *size = onnx__model_proto__get_packed_size(m);
    void *buf = malloc(*size + 1);
    onnx__model_proto__pack(m, buf);
    return buf;
}

/* Packs, frees the message and parses. */
static oct_graph *parse_model(Onnx__ModelProto *m, const char *base_dir, octet_error *err) {
    size_t size;
    void *buf = pack(m, &size);
    onnx__model_proto__free_unpacked(m, NULL);
    oct_graph *g = oct_onnx_parse(buf, size, base_dir, err);
    free(buf);
    return g;
}

/* Expects parsing to fail with `code` and a message containing `needle`. */
static void expect_fail(Onnx__ModelProto *m, octet_status code, const char *needle) {
    octet_error err = {0};
    oct_graph *g = parse_model(m, NULL, &err);
    ck_assert_msg(!g, "expected failure containing '%s'", needle);
    ck_assert_msg(err.code == code, "code %d, wanted %d: %s", err.code, code, err.msg);
    ck_assert_msg(strstr(err.msg, needle), "'%s' not in: %s", needle, err.msg);
}

/* x[1,2,N,N] -> Conv(w, b) -> Relu -> y, plus a Constant and attributes of every kind. */
static Onnx__ModelProto *small_model(void) {
    Onnx__ModelProto *m = mk_model(13);
    Onnx__GraphProto *g = m->graph;
    int64_t xd[4] = {1, 2, -1, -1}, wd[4] = {3, 2, 1, 1}, bd[1] = {3};
    float w[6] = {1, 2, 3, 4, 5, 6}, b[3] = {0.5f, -0.5f, 0.25f};
    PUSH(g->input, g->n_input, mk_vi("x", OCTET_FLOAT, 4, xd));
    PUSH(g->initializer, g->n_initializer, mk_tensor("w", OCTET_FLOAT, 4, wd, w, sizeof w));
    Onnx__TensorProto *bt = mk_tensor("b", OCTET_FLOAT, 1, bd, NULL, 0);
    bt->n_float_data = 3; /* a typed field instead of raw_data */
    bt->float_data = malloc(sizeof b);
    memcpy(bt->float_data, b, sizeof b);
    PUSH(g->initializer, g->n_initializer, bt);

    Onnx__NodeProto *conv = mk_node("conv0", "Conv", "x w b", "c");
    Onnx__AttributeProto *a = mk_attr(conv, "kernel_shape", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = 2;
    a->ints = malloc(2 * sizeof(int64_t));
    a->ints[0] = a->ints[1] = 1;
    a = mk_attr(conv, "group", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = 1;
    a = mk_attr(conv, "auto_pad", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = 6;
    a->s.data = (uint8_t *)sdup("NOTSET");
    PUSH(g->node, g->n_node, conv);

    Onnx__NodeProto *cn = mk_node("", "Constant", "", "k");
    a = mk_attr(cn, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    int64_t kd[1] = {2}, kv[2] = {7, -9};
    a->t = mk_tensor("kval", OCTET_INT64, 1, kd, NULL, 0);
    a->t->n_int64_data = 2;
    a->t->int64_data = malloc(sizeof kv);
    memcpy(a->t->int64_data, kv, sizeof kv);
    PUSH(g->node, g->n_node, cn);

    Onnx__NodeProto *clip = mk_node("clip0", "Clip", "c _ _", "y _");
    a = mk_attr(clip, "alpha", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = 0.125f;
    a = mk_attr(clip, "scales", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = 2;
    a->floats = malloc(2 * sizeof(float));
    a->floats[0] = 1.5f;
    a->floats[1] = 2.5f;
    a = mk_attr(clip, "names", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    a->n_strings = 2;
    a->strings = malloc(2 * sizeof *a->strings);
    a->strings[0].data = (uint8_t *)sdup("ab");
    a->strings[0].len = 2;
    a->strings[1].data = (uint8_t *)sdup("");
    a->strings[1].len = 0;
    PUSH(g->node, g->n_node, clip);
    PUSH(g->output, g->n_output, mk_vi("y", OCTET_FLOAT, -1, NULL));
    PUSH(g->output, g->n_output, mk_vi("k", OCTET_INT64, -1, NULL));
    return m;
}

/* ---- valid models ---- */

START_TEST(small_model_structure) {
    octet_error err = {0};
    oct_graph *g = parse_model(small_model(), NULL, &err);
    ck_assert_msg(g, "%s", err.msg);
    ck_assert_int_eq(g->opset, 13);
    ck_assert_int_eq(g->n_inputs, 1);
    const oct_value *x = &g->values[g->inputs[0]];
    ck_assert_str_eq(x->name, "x");
    ck_assert_int_eq(x->kind, OCT_VAL_INPUT);
    ck_assert_int_eq(x->rank, 4);
    ck_assert_int_eq(x->dims[1], 2);
    ck_assert_int_eq(x->dims[2], -1);
    ck_assert_str_eq(x->dim_params[2], "N");
    ck_assert_ptr_null(x->dim_params[1]);

    int w = oct_graph_find_value(g, "w"), b = oct_graph_find_value(g, "b");
    ck_assert_int_eq(g->values[w].kind, OCT_VAL_CONST);
    ck_assert_int_eq(g->values[w].rank, 4);
    ck_assert_float_eq(((float *)g->values[w].data)[5], 6.0f);
    ck_assert_float_eq(((float *)g->values[b].data)[1], -0.5f);

    ck_assert_int_eq(g->n_nodes, 3);
    const oct_node *conv = &g->nodes[0];
    ck_assert_int_eq(conv->in[1], w);
    int64_t ks[4];
    ck_assert_int_eq(oct_attr_ints(conv, "kernel_shape", ks, 4, NULL), 2);
    ck_assert_int_eq(oct_attr_int(conv, "group", 0), 1);
    ck_assert_str_eq(oct_attr_string(conv, "auto_pad", ""), "NOTSET");

    const oct_node *cn = &g->nodes[1];
    ck_assert_str_eq(cn->name, "Constant_1"); /* unnamed nodes are named after op and index */
    const oct_attr *v = oct_node_attr(cn, "value");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->type, OCT_ATTR_TENSOR);
    ck_assert_int_eq(v->t->dtype, OCTET_INT64);
    ck_assert_int_eq(((int64_t *)v->t->data)[1], -9);

    const oct_node *clip = &g->nodes[2];
    ck_assert_int_eq(clip->n_in, 3);
    ck_assert_int_eq(clip->in[1], -1);
    ck_assert_int_eq(clip->in[2], -1);
    ck_assert_int_eq(clip->n_out, 2);
    ck_assert_int_ge(clip->out[1], 0); /* an omitted output still gets its own value */
    ck_assert_int_ne(clip->out[1], clip->out[0]);
    ck_assert_float_eq(oct_attr_float(clip, "alpha", 0), 0.125f);
    const oct_attr *sc = oct_node_attr(clip, "scales");
    ck_assert_int_eq(sc->n, 2);
    ck_assert_float_eq(sc->floats[1], 2.5f);
    const oct_attr *names = oct_node_attr(clip, "names");
    ck_assert_str_eq(names->strings[0], "ab");
    ck_assert_str_eq(names->strings[1], "");

    ck_assert_int_eq(g->n_outputs, 2);
    ck_assert_str_eq(g->values[g->outputs[0]].name, "y");
    ck_assert_int_eq(g->values[g->outputs[1]].producer, 1);
    ck_assert_ptr_nonnull(g->order);
    oct_graph_free(g);
}
END_TEST

START_TEST(initializer_listed_as_input_is_not_an_input) {
    Onnx__ModelProto *m = small_model();
    int64_t wd[4] = {3, 2, 1, 1};
    PUSH(m->graph->input, m->graph->n_input, mk_vi("w", OCTET_FLOAT, 4, wd));
    octet_error err = {0};
    oct_graph *g = parse_model(m, NULL, &err);
    ck_assert_msg(g, "%s", err.msg);
    ck_assert_int_eq(g->n_inputs, 1);
    ck_assert_int_eq(g->values[oct_graph_find_value(g, "w")].kind, OCT_VAL_CONST);
    oct_graph_free(g);
}
END_TEST

START_TEST(int32_data_carries_small_types) {
    Onnx__ModelProto *m = small_model();
    int64_t d[1] = {3};
    const int types[3] = {OCTET_INT8, OCTET_UINT8, OCTET_BOOL};
    const int32_t vals[3][3] = {{-128, 5, 127}, {0, 200, 255}, {0, 1, 1}};
    const char *names[3] = {"i8", "u8", "bl"};
    for (int k = 0; k < 3; k++) {
        Onnx__TensorProto *t = mk_tensor(names[k], types[k], 1, d, NULL, 0);
        t->n_int32_data = 3;
        t->int32_data = malloc(sizeof vals[k]);
        memcpy(t->int32_data, vals[k], sizeof vals[k]);
        PUSH(m->graph->initializer, m->graph->n_initializer, t);
    }
    octet_error err = {0};
    oct_graph *g = parse_model(m, NULL, &err);
    ck_assert_msg(g, "%s", err.msg);
    const oct_value *i8 = &g->values[oct_graph_find_value(g, "i8")];
    const oct_value *u8 = &g->values[oct_graph_find_value(g, "u8")];
    const oct_value *bl = &g->values[oct_graph_find_value(g, "bl")];
    ck_assert_int_eq(((int8_t *)i8->data)[0], -128);
    ck_assert_int_eq(((uint8_t *)u8->data)[1], 200);
    ck_assert_int_eq(bl->dtype, OCTET_BOOL);
    ck_assert_int_eq(((uint8_t *)bl->data)[2], 1);
    oct_graph_free(g);
}
END_TEST

/* Every model of the ONNX node tests (and the supplement) parses, and every input/output .pb
   matches the graph input/output it belongs to. */
static int parse_suite_dir(const char *dir, int *n_tensors) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5) && strncmp(e->d_name, "supp_", 5)) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/model.onnx", dir, e->d_name);
        octet_error err = {0};
        octet_model *m = octet_model_load(path, &err);
        ck_assert_msg(m, "%s: %s", e->d_name, err.msg);
        const oct_graph *g = m->graph;
        for (int io = 0; io < 2; io++) {
            int count = io ? g->n_outputs : g->n_inputs;
            for (int j = 0; j < count; j++) {
                snprintf(path, sizeof path, "%s/%s/test_data_set_0/%s_%d.pb", dir, e->d_name,
                         io ? "output" : "input", j);
                oct_tensor t;
                char *name = NULL;
                ck_assert_msg(oct_tensor_pb_read(path, &t, &name, &err) == 0, "%s", err.msg);
                const oct_value *v = &g->values[io ? g->outputs[j] : g->inputs[j]];
                ck_assert_msg(!strcmp(name, v->name), "%s: %s is named %s", e->d_name, path, name);
                if (!io) ck_assert_int_eq(t.dtype, v->dtype);
                if (!io && v->rank >= 0) ck_assert_int_eq(t.rank, v->rank);
                free(name);
                free(t.data);
                (*n_tensors)++;
            }
        }
        octet_model_free(m);
        n++;
    }
    closedir(d);
    return n;
}

START_TEST(node_test_models_parse) {
    char dir[4096];
    int tensors = 0;
    snprintf(dir, sizeof dir, "%s/onnx-node-tests", test_shared_dir());
    int n = parse_suite_dir(dir, &tensors);
    ck_assert_msg(n >= 368, "only %d node-test models found in %s", n, dir);
    snprintf(dir, sizeof dir, "%s/onnx-node-tests-supplement", test_shared_dir());
    int s = parse_suite_dir(dir, &tensors);
    ck_assert_int_ge(s, 18);
    ck_assert_int_gt(tensors, 2 * (n + s));
}
END_TEST

/* ---- corrupt input ---- */

START_TEST(every_prefix_fails) {
    size_t size;
    Onnx__ModelProto *m = small_model();
    uint8_t *buf = pack(m, &size);
    onnx__model_proto__free_unpacked(m, NULL);
    for (size_t len = 0; len < size; len++) {
        octet_error err = {0};
        oct_graph *g = oct_onnx_parse(buf, len, NULL, &err);
        ck_assert_msg(!g, "prefix of %zu/%zu bytes parsed", len, size);
        ck_assert_msg(err.msg[0] && err.code != OCTET_OK, "no message at prefix %zu", len);
    }
    octet_error err = {0};
    oct_graph *g = oct_onnx_parse(buf, size, NULL, &err);
    ck_assert_msg(g, "%s", err.msg);
    oct_graph_free(g);
    free(buf);
}
END_TEST

START_TEST(random_bytes_fail) {
    srand(1234);
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(rand() % 4096) + 1;
        uint8_t *buf = malloc(n);
        for (size_t k = 0; k < n; k++) buf[k] = (uint8_t)rand();
        octet_error err = {0};
        oct_graph *g = oct_onnx_parse(buf, n, NULL, &err);
        ck_assert_msg(!g, "random buffer %d parsed", i);
        ck_assert_int_ne(err.code, OCTET_OK);
        free(buf);
    }
}
END_TEST

/* Flipping any single bit may or may not leave a valid model; it must never crash or leak,
   and a failure must say why. */
START_TEST(bit_flips_never_crash) {
    size_t size;
    Onnx__ModelProto *m = small_model();
    uint8_t *buf = pack(m, &size);
    onnx__model_proto__free_unpacked(m, NULL);
    int failed = 0;
    for (size_t bit = 0; bit < size * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        octet_error err = {0};
        oct_graph *g = oct_onnx_parse(buf, size, NULL, &err);
        if (g) {
            oct_graph_free(g);
        } else {
            ck_assert_msg(err.msg[0], "failure without a message at bit %zu", bit);
            failed++;
        }
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    ck_assert_int_gt(failed, 0);
    free(buf);
}
END_TEST

START_TEST(deep_nesting_is_refused) {
    /* GraphProto.node (field 1) -> NodeProto.attribute (5) -> AttributeProto.g (6) -> ... built
       from the inside out, 3000 levels deep: protobuf-c alone would recurse that deep. */
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap), *tmp = malloc(cap);
    static const uint8_t keys[3] = {(1 << 3) | 2, (5 << 3) | 2, (6 << 3) | 2};
    for (int level = 0; level < 3000; level++) {
        uint8_t key = keys[(2999 - level) % 3]; /* the outermost level is GraphProto.node */
        size_t h = 0;
        tmp[h++] = key;
        size_t v = len;
        do {
            tmp[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            v >>= 7;
        } while (v);
        ck_assert_uint_lt(h + len, cap);
        memmove(buf + h, buf, len);
        memcpy(buf, tmp, h);
        len += h;
    }
    /* wrap in ModelProto.graph (7) */
    memmove(buf + 4, buf, len);
    buf[0] = (7 << 3) | 2;
    buf[1] = (uint8_t)(0x80 | (len & 0x7f));
    buf[2] = (uint8_t)(0x80 | ((len >> 7) & 0x7f));
    buf[3] = (uint8_t)(len >> 14);
    len += 4;
    octet_error err = {0};
    ck_assert_ptr_null(oct_onnx_parse(buf, len, NULL, &err));
    ck_assert_msg(strstr(err.msg, "nested too deeply"), "%s", err.msg);
    free(buf);
    free(tmp);
}
END_TEST

START_TEST(many_empty_messages_are_refused) {
    /* 60 MB of empty NodeProto entries would decode to several GB of structs */
    size_t n = 30u << 20, len = n * 2 + 8;
    uint8_t *buf = malloc(len);
    size_t p = 0;
    buf[p++] = (7 << 3) | 2;
    size_t v = n * 2;
    do {
        buf[p++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    for (size_t i = 0; i < n; i++) {
        buf[p++] = (1 << 3) | 2;
        buf[p++] = 0;
    }
    octet_error err = {0};
    ck_assert_ptr_null(oct_onnx_parse(buf, p, NULL, &err));
    ck_assert_msg(strstr(err.msg, "memory limit"), "%s", err.msg);
    free(buf);
}
END_TEST

/* ---- hostile and unsupported models ---- */

START_TEST(huge_dims) {
    Onnx__ModelProto *m = small_model();
    int64_t d[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    PUSH(m->graph->initializer, m->graph->n_initializer,
         mk_tensor("huge", OCTET_FLOAT, 2, d, "abcd", 4));
    expect_fail(m, OCTET_ERR_UNSUPPORTED, "'huge'");
    m = small_model();
    int64_t d2[3] = {INT64_MAX, 4, 0}; /* the zero must not hide the overflow of the others */
    PUSH(m->graph->initializer, m->graph->n_initializer, mk_tensor("ovf", OCTET_INT64, 3, d2, "", 0));
    expect_fail(m, OCTET_ERR_UNSUPPORTED, "'ovf'");
}
END_TEST

START_TEST(raw_data_size_must_match) {
    Onnx__ModelProto *m = small_model();
    int64_t d[1] = {4};
    PUSH(m->graph->initializer, m->graph->n_initializer, mk_tensor("short", OCTET_FLOAT, 1, d, "abcdefgh", 8));
    expect_fail(m, OCTET_ERR_FORMAT, "raw_data has 8 bytes");
    m = small_model();
    PUSH(m->graph->initializer, m->graph->n_initializer, mk_tensor("long", OCTET_INT8, 1, d, "abcdefgh", 8));
    expect_fail(m, OCTET_ERR_FORMAT, "'long'");
    m = small_model();
    PUSH(m->graph->initializer, m->graph->n_initializer, mk_tensor("none", OCTET_INT32, 1, d, NULL, 0));
    expect_fail(m, OCTET_ERR_FORMAT, "'none'");
}
END_TEST

START_TEST(negative_and_too_many_dims) {
    Onnx__ModelProto *m = small_model();
    int64_t d[2] = {2, -3};
    PUSH(m->graph->initializer, m->graph->n_initializer, mk_tensor("neg", OCTET_FLOAT, 2, d, NULL, 0));
    expect_fail(m, OCTET_ERR_FORMAT, "negative dimension -3");
    m = small_model();
    int64_t d9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    PUSH(m->graph->initializer, m->graph->n_initializer, mk_tensor("r9", OCTET_FLOAT, 9, d9, "abcd", 4));
    expect_fail(m, OCTET_ERR_UNSUPPORTED, "rank 9");
    m = small_model();
    int64_t xd[2] = {1, -5};
    Onnx__ValueInfoProto *vi = mk_vi("x2", OCTET_FLOAT, 2, xd);
    vi->type->tensor_type->shape->dim[1]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    free(vi->type->tensor_type->shape->dim[1]->dim_param);
    vi->type->tensor_type->shape->dim[1]->dim_value = -5;
    PUSH(m->graph->input, m->graph->n_input, vi);
    expect_fail(m, OCTET_ERR_FORMAT, "graph input 'x2' has negative dimension");
}
END_TEST

START_TEST(unsupported_dtypes_are_named) {
    Onnx__ModelProto *m = small_model();
    int64_t d[1] = {1};
    PUSH(m->graph->initializer, m->graph->n_initializer, mk_tensor("dbl", 11, 1, d, "abcdefgh", 8));
    expect_fail(m, OCTET_ERR_UNSUPPORTED, "tensor 'dbl' has data type double");
    m = small_model();
    PUSH(m->graph->input, m->graph->n_input, mk_vi("half", 10, 1, d));
    expect_fail(m, OCTET_ERR_UNSUPPORTED, "graph input 'half' has data type float16");
    m = small_model();
    Onnx__TensorProto *t = mk_tensor("i8", OCTET_INT8, 1, d, NULL, 0);
    t->n_int32_data = 1;
    t->int32_data = malloc(sizeof(int32_t));
    t->int32_data[0] = 300;
    PUSH(m->graph->initializer, m->graph->n_initializer, t);
    expect_fail(m, OCTET_ERR_FORMAT, "out of range for int8");
}
END_TEST

START_TEST(graph_structure_errors) {
    Onnx__ModelProto *m = small_model();
    PUSH(m->graph->node, m->graph->n_node, mk_node("selfie", "Relu", "z", "z"));
    expect_fail(m, OCTET_ERR_FORMAT, "cycle through node 'selfie'");

    m = small_model();
    PUSH(m->graph->node, m->graph->n_node, mk_node("lost", "Relu", "nowhere", "z"));
    expect_fail(m, OCTET_ERR_FORMAT, "node 'lost' (Relu): input 'nowhere'");

    m = small_model();
    PUSH(m->graph->node, m->graph->n_node, mk_node("twice", "Relu", "x", "c"));
    expect_fail(m, OCTET_ERR_FORMAT, "node 'twice' (Relu): output 'c' is already");

    m = small_model();
    PUSH(m->graph->node, m->graph->n_node, mk_node("overwrite", "Relu", "x", "w"));
    expect_fail(m, OCTET_ERR_FORMAT, "output 'w' is already an initializer");

    m = small_model();
    free(m->graph->output[0]->name);
    m->graph->output[0]->name = sdup("ghost");
    expect_fail(m, OCTET_ERR_FORMAT, "graph output 'ghost'");

    m = small_model();
    Onnx__NodeProto *n = mk_node("iffy", "If", "x", "z");
    Onnx__AttributeProto *a = mk_attr(n, "then_branch", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
    a->g = malloc(sizeof *a->g);
    onnx__graph_proto__init(a->g);
    PUSH(m->graph->node, m->graph->n_node, n);
    expect_fail(m, OCTET_ERR_UNSUPPORTED, "node 'iffy' (If): attribute 'then_branch' is a subgraph");

    m = small_model();
    n = mk_node("custom", "Foo", "x", "z");
    n->domain = sdup("org.example");
    PUSH(m->graph->node, m->graph->n_node, n);
    expect_fail(m, OCTET_ERR_UNSUPPORTED, "node 'custom' (Foo) uses domain 'org.example'");

    m = small_model();
    n = mk_node("dup", "Relu", "x", "z");
    mk_attr(n, "a", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)->has_i = 1;
    mk_attr(n, "a", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)->has_i = 1;
    PUSH(m->graph->node, m->graph->n_node, n);
    expect_fail(m, OCTET_ERR_FORMAT, "node 'dup' (Relu) has attribute 'a' twice");

    m = small_model();
    PUSH(m->graph->initializer, m->graph->n_initializer, mk_tensor("w", OCTET_FLOAT, 0, NULL, "abcd", 4));
    expect_fail(m, OCTET_ERR_FORMAT, "initializer 'w' is defined twice");
}
END_TEST

START_TEST(opsets) {
    expect_fail(mk_model(18), OCTET_ERR_UNSUPPORTED, "opset 18");
    Onnx__ModelProto *m = small_model();
    free(m->opset_import[0]->domain);
    m->opset_import[0]->domain = sdup("ai.onnx.ml"); /* no default-domain opset at all */
    expect_fail(m, OCTET_ERR_UNSUPPORTED, "opset 0");

    m = small_model();
    Onnx__NodeProto *n = mk_node("ms", "FusedConv", "x", "z");
    n->domain = sdup("com.microsoft");
    PUSH(m->graph->node, m->graph->n_node, n);
    expect_fail(m, OCTET_ERR_FORMAT, "does not import");

    m = small_model();
    n = mk_node("ms", "FusedConv", "x", "z");
    n->domain = sdup("com.microsoft");
    PUSH(m->graph->node, m->graph->n_node, n);
    Onnx__OperatorSetIdProto *o = malloc(sizeof *o);
    onnx__operator_set_id_proto__init(o);
    o->domain = sdup("com.microsoft");
    o->has_version = 1;
    o->version = 1;
    PUSH(m->opset_import, m->n_opset_import, o);
    octet_error err = {0};
    oct_graph *g = parse_model(m, NULL, &err);
    ck_assert_msg(g, "%s", err.msg);
    ck_assert_int_eq(g->ms_opset, 1);
    ck_assert_str_eq(g->nodes[g->n_nodes - 1].domain, "com.microsoft");
    oct_graph_free(g);
}
END_TEST

/* ---- external data ---- */

static char *make_temp_dir(void) {
    const char *t = getenv("TMPDIR");
    char *dir = malloc(4096);
    snprintf(dir, 4096, "%s/octet-ext-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static void add_ext(Onnx__TensorProto *t, const char *key, const char *value) {
    Onnx__StringStringEntryProto *e = malloc(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = sdup(key);
    e->value = sdup(value);
    PUSH(t->external_data, t->n_external_data, e);
}

static Onnx__ModelProto *ext_model(const char *location, const char *offset, const char *length) {
    Onnx__ModelProto *m = small_model();
    int64_t d[2] = {2, 3};
    Onnx__TensorProto *t = mk_tensor("ext", OCTET_FLOAT, 2, d, NULL, 0);
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    add_ext(t, "location", location);
    if (offset) add_ext(t, "offset", offset);
    if (length) add_ext(t, "length", length);
    PUSH(m->graph->initializer, m->graph->n_initializer, t);
    return m;
}

START_TEST(external_data) {
    char *dir = make_temp_dir();
    char path[4200];
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    float data[10];
    for (int i = 0; i < 10; i++) data[i] = (float)i * 1.5f;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, sizeof data, 1, f), 1);
    fclose(f);

    /* a model file next to its weights, loaded by path */
    size_t size;
    Onnx__ModelProto *m = ext_model("weights.bin", "16", "24");
    void *buf = pack(m, &size);
    onnx__model_proto__free_unpacked(m, NULL);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(buf, size, 1, f), 1);
    fclose(f);
    free(buf);
    octet_error err = {0};
    octet_model *om = octet_model_load(path, &err);
    ck_assert_msg(om, "%s", err.msg);
    const oct_value *v = &om->graph->values[oct_graph_find_value(om->graph, "ext")];
    ck_assert_float_eq(((float *)v->data)[0], 6.0f);  /* data[4] */
    ck_assert_float_eq(((float *)v->data)[5], 13.5f); /* data[9] */
    octet_model_free(om);

    struct { const char *loc, *off, *len, *needle; octet_status code; } bad[] = {
        {"weights.bin", "20", "24", "beyond the end", OCTET_ERR_FORMAT},
        {"weights.bin", "0", "20", "does not match", OCTET_ERR_FORMAT},
        {"weights.bin", "-4", NULL, "bad external data offset", OCTET_ERR_FORMAT},
        {"../weights.bin", NULL, NULL, "relative path inside", OCTET_ERR_FORMAT},
        {"sub/../../weights.bin", NULL, NULL, "relative path inside", OCTET_ERR_FORMAT},
        {"/etc/passwd", NULL, NULL, "relative path inside", OCTET_ERR_FORMAT},
        {"missing.bin", NULL, NULL, "missing.bin", OCTET_ERR_IO},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = ext_model(bad[i].loc, bad[i].off, bad[i].len);
        memset(&err, 0, sizeof err);
        oct_graph *g = parse_model(m, dir, &err);
        ck_assert_msg(!g, "case %zu parsed", i);
        ck_assert_msg(err.code == bad[i].code && strstr(err.msg, bad[i].needle) && strstr(err.msg, "'ext'"),
                      "case %zu: %s", i, err.msg);
    }
    /* from memory without a base directory */
    expect_fail(ext_model("weights.bin", NULL, NULL), OCTET_ERR_ARG, "without a base directory");

    snprintf(path, sizeof path, "%s/weights.bin", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    unlink(path);
    rmdir(dir);
    free(dir);
}
END_TEST

/* ---- files ---- */

START_TEST(missing_and_bad_files) {
    octet_error err = {0};
    ck_assert_ptr_null(octet_model_load("/nonexistent/dir/model.onnx", &err));
    ck_assert_int_eq(err.code, OCTET_ERR_IO);
    ck_assert_msg(strstr(err.msg, "/nonexistent/dir/model.onnx"), "%s", err.msg);

    char *p = test_write_temp("", 0, ".onnx");
    ck_assert_ptr_null(octet_model_load(p, &err));
    ck_assert_msg(strstr(err.msg, "not a valid ONNX model"), "%s", err.msg);
    unlink(p);
    free(p);

    p = test_write_temp("hello, world", 12, ".onnx");
    ck_assert_ptr_null(octet_model_load(p, &err));
    ck_assert_msg(strstr(err.msg, "not a valid ONNX model"), "%s", err.msg);
    void *data;
    size_t size;
    ck_assert_int_eq(oct_read_file(p, 12, &data, &size, NULL), 0);
    ck_assert_uint_eq(size, 12);
    ck_assert_str_eq(data, "hello, world");
    free(data);
    ck_assert_int_eq(oct_read_file(p, 11, &data, &size, &err), -1);
    ck_assert_msg(strstr(err.msg, "limit"), "%s", err.msg);
    unlink(p);
    free(p);

    ck_assert_int_eq(oct_read_file("/tmp", 100, &data, &size, &err), -1);
    ck_assert_msg(strstr(err.msg, "directory"), "%s", err.msg);
}
END_TEST

static int64_t fill_tensor(oct_tensor *t, octet_dtype dt, int rank, const int64_t *dims) {
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    int64_t n = octet_tensor_numel(t);
    size_t bytes = (size_t)n * octet_dtype_size(dt);
    uint8_t *d = malloc(bytes + 1);
    for (size_t i = 0; i < bytes; i++) d[i] = (uint8_t)(i * 37 + 11);
    if (dt == OCTET_BOOL)
        for (size_t i = 0; i < bytes; i++) d[i] &= 1;
    t->data = d;
    return (int64_t)bytes;
}

START_TEST(npy_round_trip) {
    const octet_dtype types[] = {OCTET_FLOAT, OCTET_UINT8, OCTET_INT8, OCTET_INT32, OCTET_INT64, OCTET_BOOL};
    const int64_t shapes[4][3] = {{0}, {7}, {2, 3, 5}, {4, 0, 2}};
    const int ranks[4] = {0, 1, 3, 3};
    for (size_t k = 0; k < 6; k++) {
        for (int s = 0; s < 4; s++) {
            oct_tensor t, r;
            int64_t bytes = fill_tensor(&t, types[k], ranks[s], shapes[s]);
            char *p = test_write_temp("", 0, ".npy");
            octet_error err = {0};
            ck_assert_msg(oct_npy_write(p, &t, &err) == 0, "%s", err.msg);
            ck_assert_msg(oct_tensor_file_read(p, &r, &err) == 0, "%s", err.msg);
            ck_assert_int_eq(r.dtype, t.dtype);
            ck_assert_int_eq(r.rank, t.rank);
            for (int i = 0; i < t.rank; i++) ck_assert_int_eq(r.dims[i], t.dims[i]);
            ck_assert_int_eq(memcmp(r.data, t.data, (size_t)bytes), 0);
            /* the data starts on a 64-byte boundary and the buffer parser agrees */
            void *file;
            size_t size;
            ck_assert_int_eq(oct_read_file(p, 1 << 20, &file, &size, NULL), 0);
            ck_assert_uint_eq((size - (size_t)bytes) % 64, 0);
            oct_tensor b;
            ck_assert_msg(oct_npy_parse(file, size, &b, &err) == 0, "%s", err.msg);
            ck_assert_int_eq(memcmp(b.data, t.data, (size_t)bytes), 0);
            free(b.data);
            free(file);
            free(r.data);
            free(t.data);
            unlink(p);
            free(p);
        }
    }
}
END_TEST

/* A v1 .npy with the given header text and n data bytes. */
static char *npy_with_header(const char *hdr, size_t data_bytes, int major) {
    size_t hl = strlen(hdr), pre = major == 1 ? 10 : 12;
    size_t n = pre + hl + data_bytes;
    uint8_t *b = calloc(1, n + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[8] = (uint8_t)(hl & 0xff);
    b[9] = (uint8_t)(hl >> 8);
    memcpy(b + pre, hdr, hl);
    char *p = test_write_temp(b, n, ".npy");
    free(b);
    return p;
}

START_TEST(npy_hostile_headers) {
    struct { const char *hdr; size_t data; const char *needle; } bad[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8, "Fortran order"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "dtype '>f4'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16, "dtype '<f8'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8, "shorter"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 8, "longer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", 8, "4 GiB"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (9999999999999999999999,), }", 8, "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4, "more dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, "bad shape"},
        {"{'descr': '<f4', 'fortran_order': False}", 0, "lacks"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}", 4, "repeated key"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': ()}", 4, "expected ',' or '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': ()} junk", 4, "trailing"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': ()}", 4, "fortran_order"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2", 8, "bad shape"},
        {"{'descr': 'aaaaaaaaaaaaaaaaaaaaaaaa', 'fortran_order': False, 'shape': ()}", 4, "string"},
        {"", 0, "expected '{'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *p = npy_with_header(bad[i].hdr, bad[i].data, 1);
        oct_tensor t;
        octet_error err = {0};
        ck_assert_msg(oct_npy_read(p, &t, &err) == -1, "case %zu read", i);
        ck_assert_ptr_null(t.data);
        ck_assert_msg(strstr(err.msg, bad[i].needle), "case %zu: %s", i, err.msg);
        unlink(p);
        free(p);
    }
    /* a valid v2 header; then a version the reader does not know */
    char *p = npy_with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }\n", 8, 2);
    oct_tensor t;
    octet_error err = {0};
    ck_assert_msg(oct_npy_read(p, &t, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(t.dtype, OCTET_INT64);
    free(t.data);
    unlink(p);
    free(p);
    p = npy_with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }\n", 8, 4);
    ck_assert_int_eq(oct_npy_read(p, &t, &err), -1);
    ck_assert_msg(strstr(err.msg, "version 4"), "%s", err.msg);
    unlink(p);
    free(p);
    /* every prefix of a valid file fails cleanly */
    oct_tensor src;
    int64_t d[2] = {3, 4};
    fill_tensor(&src, OCTET_FLOAT, 2, d);
    p = test_write_temp("", 0, ".npy");
    ck_assert_int_eq(oct_npy_write(p, &src, NULL), 0);
    void *file;
    size_t size;
    ck_assert_int_eq(oct_read_file(p, 1 << 20, &file, &size, NULL), 0);
    for (size_t len = 0; len < size; len++) {
        ck_assert_int_eq(oct_npy_parse(file, len, &t, &err), -1);
        char *q = test_write_temp(file, len, ".npy");
        ck_assert_int_eq(oct_npy_read(q, &t, &err), -1);
        unlink(q);
        free(q);
    }
    ck_assert_int_eq(oct_npy_read("/nonexistent/a.npy", &t, &err), -1);
    ck_assert_msg(strstr(err.msg, "/nonexistent/a.npy"), "%s", err.msg);
    free(file);
    free(src.data);
    unlink(p);
    free(p);
}
END_TEST

START_TEST(tensor_pb_files) {
    int64_t d[2] = {2, 2};
    int32_t raw[4] = {1, -2, 3, -4};
    Onnx__TensorProto *tp = mk_tensor("thing", OCTET_INT32, 2, d, raw, sizeof raw);
    size_t n = onnx__tensor_proto__get_packed_size(tp);
    uint8_t *buf = malloc(n);
    onnx__tensor_proto__pack(tp, buf);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    char *p = test_write_temp(buf, n, ".pb");
    oct_tensor t;
    char *name;
    octet_error err = {0};
    ck_assert_msg(oct_tensor_pb_read(p, &t, &name, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(name, "thing");
    ck_assert_int_eq(t.dtype, OCTET_INT32);
    ck_assert_int_eq(((int32_t *)t.data)[3], -4);
    free(name);
    free(t.data);
    ck_assert_int_eq(oct_tensor_file_read(p, &t, &err), 0);
    free(t.data);
    unlink(p);
    free(p);
    for (size_t len = 0; len < n; len++) {
        p = test_write_temp(buf, len, ".pb");
        ck_assert_int_eq(oct_tensor_pb_read(p, &t, NULL, &err), -1);
        ck_assert_ptr_null(t.data);
        ck_assert_msg(err.msg[0], "no message at %zu", len);
        unlink(p);
        free(p);
    }
    free(buf);
}
END_TEST

int main(void) {
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("onnx");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, small_model_structure);
    tcase_add_test(tc, initializer_listed_as_input_is_not_an_input);
    tcase_add_test(tc, int32_data_carries_small_types);
    tcase_add_test(tc, node_test_models_parse);
    tcase_add_test(tc, every_prefix_fails);
    tcase_add_test(tc, random_bytes_fail);
    tcase_add_test(tc, bit_flips_never_crash);
    tcase_add_test(tc, deep_nesting_is_refused);
    tcase_add_test(tc, many_empty_messages_are_refused);
    tcase_add_test(tc, huge_dims);
    tcase_add_test(tc, raw_data_size_must_match);
    tcase_add_test(tc, negative_and_too_many_dims);
    tcase_add_test(tc, unsupported_dtypes_are_named);
    tcase_add_test(tc, graph_structure_errors);
    tcase_add_test(tc, opsets);
    tcase_add_test(tc, external_data);
    suite_add_tcase(s, tc);
    TCase *tf = tcase_create("files");
    tcase_add_test(tf, missing_and_bad_files);
    tcase_add_test(tf, npy_round_trip);
    tcase_add_test(tf, npy_hostile_headers);
    tcase_add_test(tf, tensor_pb_files);
    suite_add_tcase(s, tf);
    return test_run_suite(s);
}
