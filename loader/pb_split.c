/* Splits the initializers' raw_data out of a serialized ModelProto, so that protobuf-c unpacks
   only a small skeleton. protobuf-c copies every bytes field while unpacking; for a model file
   that is mapped into memory, that copy and the mapped pages it reads from coexisted at the
   peak: twice the weights. With the split, the loader copies one tensor at a time and returns
   the mapped pages it has read (see onnx_parse.c), so the peak stays near one copy.

   The input has passed oct_pb_wire_check, so every length fits; the walk checks again anyway.
   Only ModelProto.graph (field 7) > GraphProto.initializer (field 5) > TensorProto.raw_data
   (field 9) is touched; lengths of the two enclosing messages are re-encoded (they only shrink,
   so their varints never grow). */
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

enum { MODEL_GRAPH = 7, GRAPH_INITIALIZER = 5, TENSOR_RAW_DATA = 9, WIRE_LEN = 2 };

typedef struct {
    const uint8_t *base;
    uint8_t *out;          /* NULL: only measure */
    size_t at;             /* bytes written (or measured) */
    oct_pb_slice *slices;  /* one per initializer, in order; NULL while measuring */
    size_t n_slices;
} splitter;

typedef struct {
    uint64_t key;
    const uint8_t *start, *body, *end; /* field start, value start, field end */
} wire_field;

static int next_field(const uint8_t **p, const uint8_t *end, wire_field *f) {
    f->start = *p;
    uint64_t len = 0;
    if (oct_pb_read_varint(p, end, &f->key)) return -1;
    switch (f->key & 7) {
    case 0:
        if (oct_pb_read_varint(p, end, &len)) return -1;
        f->body = *p;
        break;
    case 1: len = 8; f->body = *p; break;
    case 5: len = 4; f->body = *p; break;
    case WIRE_LEN:
        if (oct_pb_read_varint(p, end, &len)) return -1;
        f->body = *p;
        break;
    default: return -1;
    }
    if ((f->key & 7) == 0) len = 0;
    if (len > (uint64_t)(end - *p)) return -1;
    *p += len;
    f->end = *p;
    return 0;
}

static void emit(splitter *s, const void *src, size_t n) {
    if (s->out) memcpy(s->out + s->at, src, n);
    s->at += n;
}

static void emit_varint(splitter *s, uint64_t v) {
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) b[n++] = (uint8_t)(v | 0x80), v >>= 7;
    b[n++] = (uint8_t)v;
    emit(s, b, n);
}

/* A TensorProto without its raw_data; the (last) raw_data field becomes the slice. */
static int split_tensor(splitter *s, const uint8_t *p, const uint8_t *end) {
    oct_pb_slice slice = {0, 0, 0};
    size_t kept = 0;
    for (const uint8_t *q = p; q < end;) {
        wire_field f;
        if (next_field(&q, end, &f)) return -1;
        if (f.key == ((uint64_t)TENSOR_RAW_DATA << 3 | WIRE_LEN))
            slice = (oct_pb_slice){(size_t)(f.body - s->base), (size_t)(f.end - f.body), 1};
        else
            kept += (size_t)(f.end - f.start);
    }
    emit_varint(s, (uint64_t)GRAPH_INITIALIZER << 3 | WIRE_LEN);
    emit_varint(s, kept);
    for (const uint8_t *q = p; q < end;) {
        wire_field f;
        next_field(&q, end, &f);
        if (f.key != ((uint64_t)TENSOR_RAW_DATA << 3 | WIRE_LEN)) emit(s, f.start, (size_t)(f.end - f.start));
    }
    if (s->slices) s->slices[s->n_slices] = slice;
    s->n_slices++;
    return 0;
}

static int split_graph(splitter *s, const uint8_t *p, const uint8_t *end) {
    while (p < end) {
        wire_field f;
        if (next_field(&p, end, &f)) return -1;
        if (f.key == ((uint64_t)GRAPH_INITIALIZER << 3 | WIRE_LEN)) {
            if (split_tensor(s, f.body, f.end)) return -1;
        } else {
            emit(s, f.start, (size_t)(f.end - f.start));
        }
    }
    return 0;
}

static int split_model(splitter *s, const uint8_t *p, const uint8_t *end) {
    while (p < end) {
        wire_field f;
        if (next_field(&p, end, &f)) return -1;
        if (f.key != ((uint64_t)MODEL_GRAPH << 3 | WIRE_LEN)) {
            emit(s, f.start, (size_t)(f.end - f.start));
            continue;
        }
        /* measure the graph, then write it behind its new length */
        splitter m = {s->base, NULL, 0, NULL, 0};
        if (split_graph(&m, f.body, f.end)) return -1;
        emit_varint(s, (uint64_t)MODEL_GRAPH << 3 | WIRE_LEN);
        emit_varint(s, m.at);
        if (split_graph(s, f.body, f.end)) return -1;
    }
    return 0;
}

int oct_pb_split_raw_data(const uint8_t *buf, size_t len, uint8_t **skeleton, size_t *skeleton_len,
                          oct_pb_slice **slices, size_t *n_slices, octet_error *err) {
    *skeleton = NULL;
    *slices = NULL;
    *skeleton_len = *n_slices = 0;
    splitter m = {buf, NULL, 0, NULL, 0};
    if (split_model(&m, buf, buf + len))
        return oct_fail(err, OCTET_ERR_FORMAT, "not a valid ONNX model: malformed protobuf");
    splitter s = {buf, malloc(m.at ? m.at : 1), 0, calloc(m.n_slices ? m.n_slices : 1, sizeof(oct_pb_slice)), 0};
    if (!s.out || !s.slices) {
        free(s.out);
        free(s.slices);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory reading the model");
    }
    split_model(&s, buf, buf + len);
    *skeleton = s.out;
    *skeleton_len = s.at;
    *slices = s.slices;
    *n_slices = s.n_slices;
    return 0;
}
