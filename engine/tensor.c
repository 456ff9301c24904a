/* dtype helpers and tensor utilities of the public API. */
#include <stdlib.h>

#include "octet.h"

size_t octet_dtype_size(octet_dtype dtype) {
    switch (dtype) {
    case OCTET_FLOAT: case OCTET_INT32: return 4;
    case OCTET_UINT8: case OCTET_INT8: case OCTET_BOOL: return 1;
    case OCTET_INT64: return 8;
    }
    return 0;
}

const char *octet_dtype_name(octet_dtype dtype) {
    switch (dtype) {
    case OCTET_FLOAT: return "float32";
    case OCTET_UINT8: return "uint8";
    case OCTET_INT8: return "int8";
    case OCTET_INT32: return "int32";
    case OCTET_INT64: return "int64";
    case OCTET_BOOL: return "bool";
    }
    return "unknown";
}

int64_t octet_tensor_numel(const octet_tensor *t) {
    if (t->rank < 0 || t->rank > OCTET_MAX_RANK) return -1;
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0) return -1;
        if (t->dims[i] != 0 && n > INT64_MAX / t->dims[i]) return -1;
        n *= t->dims[i];
    }
    return n;
}

void octet_tensor_release(octet_tensor *t) {
    if (!t) return;
    free(t->data);
    t->data = NULL;
}
