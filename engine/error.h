/* One error type for the whole engine: a status code and a message naming what is wrong. */
#ifndef OCT_ERROR_H
#define OCT_ERROR_H

#include "octet.h"

/* Fills err (if not NULL) with code and a printf-style message; always returns -1 so that
   callers can write `return oct_fail(err, OCTET_ERR_FORMAT, "...")`. */
int oct_fail(octet_error *err, octet_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message, e.g. with the node being prepared. Returns -1. */
int oct_fail_context(octet_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
