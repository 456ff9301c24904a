/* Single-tensor files: a serialized TensorProto (.pb, as in the ONNX test data) or a .npy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "onnx_internal.h"

int oct_tensor_pb_read(const char *path, oct_tensor *t, char **name, octet_error *err) {
    memset(t, 0, sizeof *t);
    if (name) *name = NULL;
    void *bytes;
    size_t size;
    if (oct_read_file(path, OCT_MAX_TENSOR_BYTES + (1u << 20), &bytes, &size, err)) return -1;
    if (oct_pb_wire_check(&onnx__tensor_proto__descriptor, bytes, size, "TensorProto", err)) {
        free(bytes);
        return oct_fail_context(err, "'%s'", path);
    }
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, size, bytes);
    free(bytes);
    if (!tp) return oct_fail(err, OCTET_ERR_FORMAT, "'%s' is not a valid TensorProto", path);
    if (!tp->has_data_type) {
        onnx__tensor_proto__free_unpacked(tp, NULL);
        return oct_fail(err, OCTET_ERR_FORMAT, "'%s' is not a valid TensorProto: no data type", path);
    }
    /* external data next to the .pb file */
    char *dir = NULL;
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t n = (size_t)(slash - path);
        if ((dir = malloc(n + 2))) {
            memcpy(dir, path, n ? n : 1); /* "/x.pb" -> "/" */
            dir[n ? n : 1] = 0;
        }
    }
    int rc = oct_pb_tensor_take(tp, dir ? dir : ".", t, err);
    free(dir);
    if (rc) {
        oct_fail_context(err, "'%s'", path);
    } else if (name) {
        const char *s = tp->name ? tp->name : "";
        if (!(*name = malloc(strlen(s) + 1))) {
            free(t->data);
            t->data = NULL;
            rc = oct_fail(err, OCTET_ERR_NOMEM, "out of memory reading '%s'", path);
        } else {
            strcpy(*name, s);
        }
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return rc;
}

int oct_tensor_file_read(const char *path, oct_tensor *t, octet_error *err) {
    size_t n = strlen(path);
    if (n >= 4 && !strcmp(path + n - 4, ".npy")) return oct_npy_read(path, t, err);
    return oct_tensor_pb_read(path, t, NULL, err);
}
