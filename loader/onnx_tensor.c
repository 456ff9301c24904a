/* TensorProto -> oct_tensor: dtype and dims validation, raw_data (taken without a copy),
   the typed repeated fields, and external data files. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_internal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raw_data is little-endian; octet supports little-endian hosts only"
#endif

const char *oct_onnx_dtype_name(int32_t dt) {
    static const char *const names[] = {"undefined", "float32", "uint8", "int8", "uint16", "int16",
                                        "int32", "int64", "string", "bool", "float16", "double",
                                        "uint32", "uint64", "complex64", "complex128", "bfloat16"};
    if (dt >= 0 && dt < (int32_t)(sizeof names / sizeof names[0])) return names[dt];
    return "unknown";
}

static const char *tname(const Onnx__TensorProto *tp) {
    return tp->name && *tp->name ? tp->name : "(unnamed)";
}

static int dtype_supported(int32_t dt) {
    return dt == OCTET_FLOAT || dt == OCTET_UINT8 || dt == OCTET_INT8 || dt == OCTET_INT32 ||
           dt == OCTET_INT64 || dt == OCTET_BOOL;
}

/* A relative path that stays inside the base directory: no leading '/', no ".." component. */
static int path_is_contained(const char *p) {
    if (!*p || p[0] == '/' || p[0] == '\\') return 0;
    const char *c = p;
    while (*c) {
        size_t n = strcspn(c, "/\\");
        if (n == 2 && c[0] == '.' && c[1] == '.') return 0;
        c += n;
        if (*c) c++;
    }
    return 1;
}

static int parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int read_external(const Onnx__TensorProto *tp, const char *base_dir, uint64_t nbytes,
                         void *dst, octet_error *err) {
    const char *location = NULL, *offset_s = NULL, *length_s = NULL;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e->key) continue;
        if (!strcmp(e->key, "location")) location = e->value;
        else if (!strcmp(e->key, "offset")) offset_s = e->value;
        else if (!strcmp(e->key, "length")) length_s = e->value;
    }
    if (!base_dir)
        return oct_fail(err, OCTET_ERR_ARG,
                        "tensor '%s' uses external data, but the model was loaded from memory "
                        "without a base directory", tname(tp));
    if (!location || !path_is_contained(location))
        return oct_fail(err, OCTET_ERR_FORMAT,
                        "tensor '%s': external data location '%s' must be a relative path inside "
                        "the model directory", tname(tp), location ? location : "(missing)");
    uint64_t offset = 0, length = nbytes;
    if (offset_s && parse_u64(offset_s, &offset))
        return oct_fail(err, OCTET_ERR_FORMAT, "tensor '%s': bad external data offset '%s'",
                        tname(tp), offset_s);
    if (length_s && parse_u64(length_s, &length))
        return oct_fail(err, OCTET_ERR_FORMAT, "tensor '%s': bad external data length '%s'",
                        tname(tp), length_s);
    if (length != nbytes)
        return oct_fail(err, OCTET_ERR_FORMAT,
                        "tensor '%s': external data length %" PRIu64 " does not match its shape "
                        "(%" PRIu64 " bytes)", tname(tp), length, nbytes);
    size_t plen = strlen(base_dir) + strlen(location) + 2;
    char *path = malloc(plen);
    if (!path) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory reading tensor '%s'", tname(tp));
    snprintf(path, plen, "%s/%s", base_dir, location);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        oct_fail(err, OCTET_ERR_IO, "tensor '%s': cannot open external data file '%s': %s",
                 tname(tp), path, strerror(errno));
        free(path);
        return -1;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        rc = oct_fail(err, OCTET_ERR_IO, "tensor '%s': external data '%s' is not a regular file",
                      tname(tp), path);
    } else if (offset > (uint64_t)st.st_size || length > (uint64_t)st.st_size - offset) {
        rc = oct_fail(err, OCTET_ERR_FORMAT,
                      "tensor '%s': external data range [%" PRIu64 ", +%" PRIu64 ") is beyond the "
                      "end of '%s' (%" PRIu64 " bytes)", tname(tp), offset, length, path,
                      (uint64_t)st.st_size);
    } else {
        uint8_t *d = dst;
        uint64_t done = 0;
        while (done < length) {
            size_t chunk = length - done > ((size_t)1 << 30) ? (size_t)1 << 30 : (size_t)(length - done);
            ssize_t r = pread(fd, d + done, chunk, (off_t)(offset + done));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                rc = oct_fail(err, OCTET_ERR_IO, "tensor '%s': reading external data '%s' failed: %s",
                              tname(tp), path, r < 0 ? strerror(errno) : "unexpected end of file");
                break;
            }
            done += (uint64_t)r;
        }
    }
    close(fd);
    free(path);
    return rc;
}

/* Copies a typed field (int32_data carries int8/uint8/bool too), checking each value's range. */
static int copy_typed(const Onnx__TensorProto *tp, octet_dtype dt, int64_t numel, void *dst,
                      octet_error *err) {
    size_t have;
    const char *field;
    switch (dt) {
    case OCTET_FLOAT: have = tp->n_float_data; field = "float_data"; break;
    case OCTET_INT64: have = tp->n_int64_data; field = "int64_data"; break;
    default: have = tp->n_int32_data; field = "int32_data"; break;
    }
    if (have != (size_t)numel)
        return oct_fail(err, OCTET_ERR_FORMAT,
                        "tensor '%s' (%s) has %zu values in %s, its shape needs %" PRId64, tname(tp),
                        octet_dtype_name(dt), have, field, numel);
    switch (dt) {
    case OCTET_FLOAT: memcpy(dst, tp->float_data, have * sizeof(float)); return 0;
    case OCTET_INT64: memcpy(dst, tp->int64_data, have * sizeof(int64_t)); return 0;
    case OCTET_INT32: memcpy(dst, tp->int32_data, have * sizeof(int32_t)); return 0;
    default: break;
    }
    int32_t lo = dt == OCTET_INT8 ? -128 : 0, hi = dt == OCTET_INT8 ? 127 : dt == OCTET_UINT8 ? 255 : 1;
    for (size_t i = 0; i < have; i++) {
        int32_t v = tp->int32_data[i];
        if (v < lo || v > hi)
            return oct_fail(err, OCTET_ERR_FORMAT, "tensor '%s': value %d at %zu is out of range for %s",
                            tname(tp), v, i, octet_dtype_name(dt));
        if (dt == OCTET_INT8) ((int8_t *)dst)[i] = (int8_t)v;
        else ((uint8_t *)dst)[i] = (uint8_t)v;
    }
    return 0;
}

int oct_pb_tensor_take(Onnx__TensorProto *tp, const char *base_dir, oct_tensor *t, octet_error *err) {
    memset(t, 0, sizeof *t);
    int32_t dt = tp->data_type;
    if (!dtype_supported(dt))
        return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                        "tensor '%s' has data type %s (%d); octet supports float32, uint8, int8, "
                        "int32, int64 and bool", tname(tp), oct_onnx_dtype_name(dt), (int)dt);
    if (tp->segment)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "tensor '%s' is segmented", tname(tp));
    if (tp->n_dims > OCTET_MAX_RANK)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "tensor '%s' has rank %zu, at most %d supported",
                        tname(tp), tp->n_dims, OCTET_MAX_RANK);
    size_t esize = octet_dtype_size((octet_dtype)dt);
    uint64_t numel = 1;
    for (size_t i = 0; i < tp->n_dims; i++) {
        int64_t d = tp->dims[i];
        if (d < 0)
            return oct_fail(err, OCTET_ERR_FORMAT, "tensor '%s' has negative dimension %" PRId64
                            " at axis %zu", tname(tp), d, i);
        if (d != 0 && numel > OCT_MAX_TENSOR_BYTES / esize / (uint64_t)d)
            return oct_fail(err, OCTET_ERR_UNSUPPORTED, "tensor '%s' is larger than the 4 GiB limit",
                            tname(tp));
        numel *= (uint64_t)d;
        t->dims[i] = d;
    }
    uint64_t nbytes = numel * esize;
    t->dtype = (octet_dtype)dt;
    t->rank = (int)tp->n_dims;
    int external = tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (!external && tp->has_raw_data && tp->raw_data.len == nbytes && nbytes > 0 && tp->raw_data.data) {
        t->data = tp->raw_data.data; /* taken, not copied: weights are most of a model's bytes */
        tp->raw_data.data = NULL;
        tp->raw_data.len = 0;
        tp->has_raw_data = 0;
    } else {
        if (!external && tp->has_raw_data && tp->raw_data.len != nbytes)
            return oct_fail(err, OCTET_ERR_FORMAT,
                            "tensor '%s' (%s): raw_data has %zu bytes, its shape needs %" PRIu64,
                            tname(tp), octet_dtype_name(t->dtype), tp->raw_data.len, nbytes);
        t->data = malloc(nbytes ? nbytes : 1);
        if (!t->data)
            return oct_fail(err, OCTET_ERR_NOMEM, "out of memory for tensor '%s' (%" PRIu64 " bytes)",
                            tname(tp), nbytes);
        int rc = 0;
        if (external) rc = read_external(tp, base_dir, nbytes, t->data, err);
        else if (!tp->has_raw_data) rc = copy_typed(tp, t->dtype, (int64_t)numel, t->data, err);
        if (rc) {
            free(t->data);
            t->data = NULL;
            return -1;
        }
    }
    if (t->dtype == OCTET_BOOL) {
        uint8_t *b = t->data;
        for (uint64_t i = 0; i < numel; i++) b[i] = b[i] != 0;
    }
    return 0;
}
