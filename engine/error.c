#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int oct_fail(octet_error *err, octet_status code, const char *fmt, ...) {
    if (!err) return -1;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int oct_fail_context(octet_error *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    if (err->code == OCTET_OK) err->code = OCTET_ERR_INTERNAL;
    return -1;
}

const char *octet_status_name(octet_status code) {
    switch (code) {
    case OCTET_OK: return "ok";
    case OCTET_ERR_IO: return "i/o error";
    case OCTET_ERR_FORMAT: return "format error";
    case OCTET_ERR_UNSUPPORTED: return "unsupported";
    case OCTET_ERR_SHAPE: return "shape error";
    case OCTET_ERR_ARG: return "bad argument";
    case OCTET_ERR_NOMEM: return "out of memory";
    case OCTET_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}
