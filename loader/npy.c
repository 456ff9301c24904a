/* NumPy .npy files, versions 1.0-3.0: a magic string, a Python-dict header, raw C-order data.
   The header is parsed by a small strict parser (no eval), so a hostile header can only fail. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

#define NPY_MAX_HEADER 65536 /* numpy itself refuses headers over 10000 bytes by default */
#define NPY_MAX_BYTES ((uint64_t)4 << 30)

typedef struct {
    const char *p;
    const char *path;
    octet_error *err;
} hdr_parser;

static int hdr_fail(hdr_parser *h, const char *why) {
    return oct_fail(h->err, OCTET_ERR_FORMAT, "'%s' is not a valid .npy file: header %s", h->path, why);
}

static void skip_ws(hdr_parser *h) {
    while (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r') h->p++;
}

static int expect(hdr_parser *h, char ch) {
    skip_ws(h);
    if (*h->p != ch) {
        char why[48];
        snprintf(why, sizeof why, "expected '%c'", ch);
        return hdr_fail(h, why);
    }
    h->p++;
    return 0;
}

/* A quoted Python string without escapes, copied into out[cap]. */
static int parse_string(hdr_parser *h, char *out, size_t cap) {
    skip_ws(h);
    char q = *h->p;
    if (q != '\'' && q != '"') return hdr_fail(h, "expected a quoted string");
    h->p++;
    size_t n = 0;
    while (*h->p && *h->p != q) {
        if (*h->p == '\\' || n + 1 >= cap) return hdr_fail(h, "has an unexpected string");
        out[n++] = *h->p++;
    }
    if (*h->p != q) return hdr_fail(h, "has an unterminated string");
    h->p++;
    out[n] = 0;
    return 0;
}

static int parse_bool(hdr_parser *h, int *out) {
    skip_ws(h);
    if (!strncmp(h->p, "True", 4)) { *out = 1; h->p += 4; return 0; }
    if (!strncmp(h->p, "False", 5)) { *out = 0; h->p += 5; return 0; }
    return hdr_fail(h, "has a bad fortran_order value");
}

/* A tuple of non-negative ints: (), (3,), (2, 3) with an optional trailing comma. */
static int parse_shape(hdr_parser *h, oct_tensor *t) {
    if (expect(h, '(')) return -1;
    t->rank = 0;
    for (;;) {
        skip_ws(h);
        if (*h->p == ')') { h->p++; return 0; }
        if (!isdigit((unsigned char)*h->p)) return hdr_fail(h, "has a bad shape");
        int64_t v = 0;
        while (isdigit((unsigned char)*h->p)) {
            if (v > (INT64_MAX - 9) / 10) return hdr_fail(h, "has a dimension that is too large");
            v = v * 10 + (*h->p++ - '0');
        }
        if (*h->p == 'L') h->p++; /* Python 2 longs */
        if (t->rank >= OCTET_MAX_RANK) return hdr_fail(h, "has more dimensions than octet supports (8)");
        t->dims[t->rank++] = v;
        skip_ws(h);
        if (*h->p == ',') h->p++;
        else if (*h->p != ')') return hdr_fail(h, "has a bad shape");
    }
}

static int dtype_from_descr(const char *d, octet_dtype *out) {
    /* '|' (not applicable) and '<' are what numpy writes; '=' is native, little-endian here. */
    if (d[0] != '<' && d[0] != '|' && d[0] != '=') return -1;
    const char *k = d + 1;
    if (!strcmp(k, "f4")) *out = OCTET_FLOAT;
    else if (!strcmp(k, "u1")) *out = OCTET_UINT8;
    else if (!strcmp(k, "i1")) *out = OCTET_INT8;
    else if (!strcmp(k, "i4")) *out = OCTET_INT32;
    else if (!strcmp(k, "i8")) *out = OCTET_INT64;
    else if (!strcmp(k, "b1")) *out = OCTET_BOOL;
    else return -1;
    return 0;
}

static int parse_header(hdr_parser *h, oct_tensor *t) {
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
    char descr[16], key[32];
    if (expect(h, '{')) return -1;
    for (;;) {
        skip_ws(h);
        if (*h->p == '}') { h->p++; break; }
        if (parse_string(h, key, sizeof key) || expect(h, ':')) return -1;
        if (!strcmp(key, "descr") && !have_descr) {
            if (parse_string(h, descr, sizeof descr)) return -1;
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order") && !have_order) {
            if (parse_bool(h, &fortran)) return -1;
            have_order = 1;
        } else if (!strcmp(key, "shape") && !have_shape) {
            if (parse_shape(h, t)) return -1;
            have_shape = 1;
        } else {
            return hdr_fail(h, "has an unexpected or repeated key");
        }
        skip_ws(h);
        if (*h->p == ',') h->p++;
        else if (*h->p != '}') return hdr_fail(h, "expected ',' or '}'");
    }
    skip_ws(h);
    if (*h->p) return hdr_fail(h, "has trailing characters");
    if (!have_descr || !have_order || !have_shape)
        return hdr_fail(h, "lacks one of descr, fortran_order, shape");
    if (fortran)
        return oct_fail(h->err, OCTET_ERR_UNSUPPORTED,
                        "'%s' is stored in Fortran order; save it in C order (np.ascontiguousarray)",
                        h->path);
    if (dtype_from_descr(descr, &t->dtype))
        return oct_fail(h->err, OCTET_ERR_UNSUPPORTED,
                        "'%s' has dtype '%s'; octet reads little-endian f4, u1, i1, i4, i8 and b1",
                        h->path, descr);
    return 0;
}

static uint32_t le_u32(const unsigned char *b, int n) {
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

/* The fixed part: magic, version, header length. b holds the first `have` bytes of the file. */
static int parse_preamble(const unsigned char *b, size_t have, const char *name, size_t *pre_len,
                          uint32_t *hlen, octet_error *err) {
    if (have < 10 || memcmp(b, "\x93NUMPY", 6))
        return oct_fail(err, OCTET_ERR_FORMAT, "'%s' is not a .npy file (bad magic)", name);
    int major = b[6];
    if (major < 1 || major > 3)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "'%s' is .npy version %d.%d; octet reads 1.0 to 3.0",
                        name, major, b[7]);
    *pre_len = major == 1 ? 10 : 12;
    if (have < *pre_len)
        return oct_fail(err, OCTET_ERR_FORMAT, "'%s' is not a valid .npy file: truncated header", name);
    *hlen = major == 1 ? le_u32(b + 8, 2) : le_u32(b + 8, 4);
    if (*hlen > NPY_MAX_HEADER)
        return oct_fail(err, OCTET_ERR_FORMAT, "'%s' is not a valid .npy file: header of %u bytes",
                        name, *hlen);
    return 0;
}

/* Parses the header dict (hlen bytes at hdr, not NUL-terminated) into t's dtype and shape and
   returns the data size in *nbytes. */
static int parse_header_text(const char *text, uint32_t hlen, const char *name, oct_tensor *t,
                             size_t *nbytes, octet_error *err) {
    char *hdr = malloc(hlen + 1);
    if (!hdr) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory reading '%s'", name);
    memcpy(hdr, text, hlen);
    hdr[hlen] = 0;
    int rc = -1;
    hdr_parser h = {hdr, name, err};
    if (strlen(hdr) != hlen) {
        oct_fail(err, OCTET_ERR_FORMAT, "'%s' is not a valid .npy file: NUL byte in the header", name);
    } else if (!parse_header(&h, t)) {
        int64_t numel = octet_tensor_numel(t);
        size_t esize = octet_dtype_size(t->dtype);
        if (numel < 0 || (uint64_t)numel > NPY_MAX_BYTES / esize) {
            oct_fail(err, OCTET_ERR_UNSUPPORTED, "'%s' holds more than 4 GiB of data", name);
        } else {
            *nbytes = (size_t)numel * esize;
            rc = 0;
        }
    }
    free(hdr);
    return rc;
}

static void normalize_bools(oct_tensor *t, size_t nbytes) {
    if (t->dtype == OCTET_BOOL)
        for (size_t i = 0; i < nbytes; i++) ((uint8_t *)t->data)[i] = ((uint8_t *)t->data)[i] != 0;
}

static int data_size_mismatch(const char *name, int shorter, octet_error *err) {
    return oct_fail(err, OCTET_ERR_FORMAT, "'%s': the data is %s than the shape in its header says",
                    name, shorter ? "shorter" : "longer");
}

int oct_npy_parse(const void *bytes, size_t size, oct_tensor *t, octet_error *err) {
    memset(t, 0, sizeof *t);
    const unsigned char *b = bytes;
    const char *name = "(npy buffer)";
    size_t pre_len, nbytes;
    uint32_t hlen;
    if (parse_preamble(b, size, name, &pre_len, &hlen, err)) return -1;
    if (size - pre_len < hlen)
        return oct_fail(err, OCTET_ERR_FORMAT, "'%s' is not a valid .npy file: truncated header", name);
    if (parse_header_text((const char *)b + pre_len, hlen, name, t, &nbytes, err)) return -1;
    size_t avail = size - pre_len - hlen;
    if (avail != nbytes) return data_size_mismatch(name, avail < nbytes, err);
    if (!(t->data = malloc(nbytes ? nbytes : 1)))
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory for a .npy array (%zu bytes)", nbytes);
    if (nbytes) memcpy(t->data, b + pre_len + hlen, nbytes);
    normalize_bools(t, nbytes);
    return 0;
}

int oct_npy_read(const char *path, oct_tensor *t, octet_error *err) {
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) return oct_fail(err, OCTET_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    /* preamble and header (at most 12 + 64 KiB) first, then the data straight into place */
    unsigned char pre[12];
    char *hdr = NULL;
    size_t pre_len, nbytes = 0;
    uint32_t hlen;
    int rc = -1;
    size_t have = fread(pre, 1, sizeof pre, f);
    if (parse_preamble(pre, have, path, &pre_len, &hlen, err)) goto out;
    if (!(hdr = malloc(hlen + 1))) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory reading '%s'", path);
        goto out;
    }
    size_t early = have - pre_len; /* header bytes already read with the preamble */
    if (early > hlen) early = hlen;
    memcpy(hdr, pre + pre_len, early);
    if (fread(hdr + early, 1, hlen - early, f) != hlen - early) {
        oct_fail(err, OCTET_ERR_FORMAT, "'%s' is not a valid .npy file: truncated header", path);
        goto out;
    }
    if (parse_header_text(hdr, hlen, path, t, &nbytes, err)) goto out;
    if (!(t->data = malloc(nbytes ? nbytes : 1))) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory reading '%s' (%zu bytes)", path, nbytes);
        goto out;
    }
    /* data bytes that came in with the preamble (a tiny header leaves some in pre) */
    size_t pre_data = have - pre_len - early;
    if (pre_data > nbytes) {
        data_size_mismatch(path, 0, err);
        goto out;
    }
    memcpy(t->data, pre + pre_len + early, pre_data);
    size_t got = pre_data + fread((char *)t->data + pre_data, 1, nbytes - pre_data, f);
    if (got != nbytes || fgetc(f) != EOF) {
        data_size_mismatch(path, got != nbytes, err);
        goto out;
    }
    normalize_bools(t, nbytes);
    rc = 0;
out:
    if (rc) {
        free(t->data);
        t->data = NULL;
    }
    free(hdr);
    fclose(f);
    return rc;
}

static const char *descr_of(octet_dtype dt) {
    switch (dt) {
    case OCTET_FLOAT: return "<f4";
    case OCTET_UINT8: return "|u1";
    case OCTET_INT8: return "|i1";
    case OCTET_INT32: return "<i4";
    case OCTET_INT64: return "<i8";
    case OCTET_BOOL: return "|b1";
    }
    return NULL;
}

int oct_npy_write(const char *path, const oct_tensor *t, octet_error *err) {
    const char *descr = descr_of(t->dtype);
    int64_t numel = octet_tensor_numel(t);
    if (!descr) return oct_fail(err, OCTET_ERR_ARG, "cannot write '%s': unknown dtype %d", path, (int)t->dtype);
    if (numel < 0) return oct_fail(err, OCTET_ERR_ARG, "cannot write '%s': bad shape", path);
    if (numel > 0 && !t->data) return oct_fail(err, OCTET_ERR_ARG, "cannot write '%s': no data", path);
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->rank; i++)
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%" PRId64 "%s", t->dims[i],
                      t->rank == 1 ? "," : i + 1 < t->rank ? ", " : "");
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "), }");
    /* pad with spaces so the data starts on a 64-byte boundary; the header ends in '\n' */
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    memset(hdr + n, ' ', (size_t)pad);
    n += pad;
    hdr[n++] = '\n';
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xff),
                             (unsigned char)(n >> 8)};
    FILE *f = fopen(path, "wb");
    if (!f) return oct_fail(err, OCTET_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    size_t nbytes = (size_t)numel * octet_dtype_size(t->dtype);
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)n, f) == (size_t)n &&
             (nbytes == 0 || fwrite(t->data, 1, nbytes, f) == nbytes);
    if (fclose(f) || !ok) return oct_fail(err, OCTET_ERR_IO, "error writing '%s'", path);
    return 0;
}
