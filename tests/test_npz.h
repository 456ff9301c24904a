/* Writing .npz files in tests: a zip of stored (uncompressed) .npy members, as numpy.savez
   writes them, so that the data-set tests need no Python. Static helpers, included by the tests
   that use them. */
#ifndef OCT_TEST_NPZ_H
#define OCT_TEST_NPZ_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/npz.h"
#include "test_util.h"

typedef struct {
    const char *name;
    const char *descr;
    int rank;
    int64_t dims[5];
    const void *data;
    size_t nbytes;
} npy_member;

/* A .npy file (version 1.0) in a malloc'ed buffer. */
static uint8_t *npy_bytes(const npy_member *m, size_t *size) {
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", m->descr);
    for (int d = 0; d < m->rank; d++) n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)m->dims[d], d + 1 < m->rank ? " " : "");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    size_t hlen = (size_t)n + 1;
    while ((10 + hlen) % 64) hlen++;
    *size = 10 + hlen + m->nbytes;
    uint8_t *b = malloc(*size);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)(hlen & 0xff);
    b[9] = (uint8_t)(hlen >> 8);
    memset(b + 10, ' ', hlen);
    memcpy(b + 10, dict, (size_t)n);
    b[10 + hlen - 1] = '\n';
    memcpy(b + 10 + hlen, m->data, m->nbytes);
    return b;
}

static void put16(FILE *f, unsigned v) {
    fputc((int)(v & 0xff), f);
    fputc((int)(v >> 8 & 0xff), f);
}
static void put32(FILE *f, uint32_t v) {
    put16(f, v & 0xffff);
    put16(f, v >> 16);
}

/* Writes a zip of stored (uncompressed) .npy members, as numpy.savez does. Returns the path. */
static char *write_npz(const npy_member *members, int count) {
    char *path = test_write_temp("", 0, ".npz");
    ck_assert_ptr_nonnull(path);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint32_t offsets[8], crcs[8], sizes[8];
    char names[8][64];
    ck_assert_int_le(count, 8);
    for (int i = 0; i < count; i++) {
        size_t size;
        uint8_t *b = npy_bytes(&members[i], &size);
        snprintf(names[i], sizeof names[i], "%s.npy", members[i].name);
        offsets[i] = (uint32_t)ftell(f);
        crcs[i] = oct_crc32(0, b, size);
        sizes[i] = (uint32_t)size;
        put32(f, 0x04034b50u);
        put16(f, 20), put16(f, 0), put16(f, 0), put16(f, 0), put16(f, 0x21);
        put32(f, crcs[i]), put32(f, sizes[i]), put32(f, sizes[i]);
        put16(f, (unsigned)strlen(names[i])), put16(f, 0);
        fputs(names[i], f);
        fwrite(b, 1, size, f);
        free(b);
    }
    uint32_t cd = (uint32_t)ftell(f);
    for (int i = 0; i < count; i++) {
        put32(f, 0x02014b50u);
        put16(f, 20), put16(f, 20), put16(f, 0), put16(f, 0), put16(f, 0), put16(f, 0x21);
        put32(f, crcs[i]), put32(f, sizes[i]), put32(f, sizes[i]);
        put16(f, (unsigned)strlen(names[i])), put16(f, 0), put16(f, 0), put16(f, 0), put16(f, 0);
        put32(f, 0), put32(f, offsets[i]);
        fputs(names[i], f);
    }
    uint32_t cd_size = (uint32_t)ftell(f) - cd;
    put32(f, 0x06054b50u);
    put16(f, 0), put16(f, 0), put16(f, (unsigned)count), put16(f, (unsigned)count);
    put32(f, cd_size), put32(f, cd), put16(f, 0);
    fclose(f);
    return path;
}

#endif
