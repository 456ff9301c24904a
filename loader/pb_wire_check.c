/* A pre-pass over protobuf wire data. protobuf-c 1.4 recurses once per nested message with no
   depth limit and allocates a full C struct for every (possibly empty, two-byte) sub-message, so
   a hostile file could overflow the stack or turn 100 MB into tens of GB. This walk is linear in
   the input and bounds both before unpacking. */
#include "onnx_internal.h"

/* ONNX nests Model > Graph > Node > Attribute > Graph ... ; real models stay far below this. */
#define MAX_DEPTH 48

typedef struct {
    const char *what;
    const uint8_t *base;
    uint64_t decoded_bytes; /* estimate of what protobuf-c will allocate */
    uint64_t decoded_limit;
    octet_error *err;
} wire_walk;

static int wire_fail(wire_walk *w, const uint8_t *at, const char *why) {
    return oct_fail(w->err, OCTET_ERR_FORMAT, "not a valid %s: %s at byte %zu", w->what, why,
                    (size_t)(at - w->base));
}

int oct_pb_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Decoded bytes per encoded byte of a packed repeated scalar field (worst case). */
static uint64_t packed_growth(ProtobufCType type) {
    switch (type) {
    case PROTOBUF_C_TYPE_FLOAT: case PROTOBUF_C_TYPE_DOUBLE: case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64:
        return 1;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_SINT64:
        return 8;
    default: /* 32-bit varints, enums and bools decode to 4 bytes */
        return 4;
    }
}

static int walk(wire_walk *w, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                const uint8_t *end, int depth) {
    if (depth > MAX_DEPTH) return wire_fail(w, p, "messages nested too deeply");
    while (p < end) {
        const uint8_t *field_start = p;
        uint64_t key, len;
        if (oct_pb_read_varint(&p, end, &key)) return wire_fail(w, field_start, "truncated field key");
        uint32_t id = (uint32_t)(key >> 3);
        if (id == 0 || key >> 3 > 0x1fffffff) return wire_fail(w, field_start, "invalid field number");
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(desc, id);
        switch (key & 7) {
        case 0:
            if (oct_pb_read_varint(&p, end, &len)) return wire_fail(w, field_start, "truncated varint");
            if (fd && fd->label == PROTOBUF_C_LABEL_REPEATED) w->decoded_bytes += 8;
            break;
        case 1:
            if (end - p < 8) return wire_fail(w, field_start, "truncated fixed64");
            p += 8;
            break;
        case 5:
            if (end - p < 4) return wire_fail(w, field_start, "truncated fixed32");
            p += 4;
            break;
        case 2:
            if (oct_pb_read_varint(&p, end, &len) || len > (uint64_t)(end - p))
                return wire_fail(w, field_start, "truncated length-delimited field");
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                const ProtobufCMessageDescriptor *sub = fd->descriptor;
                w->decoded_bytes += sub->sizeof_message + 16;
                if (walk(w, sub, p, p + len, depth + 1)) return -1;
            } else if (fd && (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_BYTES)) {
                w->decoded_bytes += 32 + len;
            } else if (fd) {
                w->decoded_bytes += packed_growth(fd->type) * len;
            }
            p += len;
            break;
        default:
            return wire_fail(w, field_start, "unsupported wire type");
        }
        if (w->decoded_bytes > w->decoded_limit)
            return wire_fail(w, field_start, "decoded size would exceed the memory limit");
    }
    return 0;
}

int oct_pb_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                      const char *what, octet_error *err) {
    wire_walk w = {what, buf, 0, 0, err};
    /* Legitimate files decode to little more than their size (raw_data dominates); allow a wide
       margin for small models with many tiny messages. */
    w.decoded_limit = (uint64_t)len * 4 + ((uint64_t)256 << 20);
    return walk(&w, desc, buf, buf + len, 0);
}
