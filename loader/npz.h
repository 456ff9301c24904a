/* .npz archives (the zip files numpy.savez / savez_compressed write) and the DEFLATE decoder
   they need. Every size in the archive is checked before it is trusted: a hostile file gives
   an error, never a crash or an allocation beyond what the archive can legitimately hold. */
#ifndef OCT_NPZ_H
#define OCT_NPZ_H

#include <stddef.h>
#include <stdint.h>

#include "../engine/error.h"
#include "../engine/graph.h"

/* CRC-32 (ISO-HDLC, as zip uses): crc = oct_crc32(0, data, n), chainable. */
uint32_t oct_crc32(uint32_t crc, const void *data, size_t n);

/* Decodes a raw DEFLATE stream (RFC 1951, no zlib/gzip wrapper) into out, which holds
   out_cap bytes. Fails on malformed or truncated input and when the output would exceed
   out_cap. *out_len receives the decoded size; *in_used the compressed bytes consumed. */
int oct_inflate(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap,
                size_t *out_len, size_t *in_used, octet_error *err);

/* One member of an archive. Array names are member names without the ".npy" suffix. */
typedef struct {
    char *name;               /* malloc'ed */
    uint16_t method;          /* 0 stored, 8 deflate */
    uint32_t crc;
    uint64_t compressed_size;
    uint64_t size;            /* uncompressed */
    uint64_t header_offset;   /* of the local file header */
} oct_npz_entry;

/* Lists the members; *entries is malloc'ed, release with oct_npz_entries_free. */
int oct_npz_list(const char *path, oct_npz_entry **entries, int *count, octet_error *err);
void oct_npz_entries_free(oct_npz_entry *entries, int count);

/* Reads the array named `array` ("x" or "x.npy"). t->data is malloc'ed. */
int oct_npz_read(const char *path, const char *array, oct_tensor *t, octet_error *err);

/* Reads sample `index` along axis 0 of the array: shape [1, dims[1:]...]. */
int oct_npz_read_sample(const char *path, const char *array, int64_t index, oct_tensor *t,
                        octet_error *err);

#endif
