/* .npz reader: the zip container around .npy members. Only what numpy writes is accepted:
   a single-disk archive, members stored (method 0) or deflated (method 8), no encryption.
   Sizes come from the central directory (numpy's writer may also put a ZIP64 extra field in
   the local headers; that is skipped). Archives that need ZIP64 (> 4 GB) are refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "loader.h"
#include "npz.h"

#define EOCD_SIZE 22
#define CDIR_SIZE 46
#define LOCAL_SIZE 30
#define U32_MAX_FIELD 0xffffffffu
#define MAX_COMMENT 0xffff
/* DEFLATE cannot expand by more than 1032:1 (258-byte matches coded in 2 bits); a member that
   declares more is lying, and is refused before anything is allocated for it. */
#define DEFLATE_MAX_RATIO 1032

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct {
    const char *path;
    FILE *f;
    uint64_t size;
} archive;

static int archive_read_at(archive *a, uint64_t offset, void *buf, size_t n, octet_error *err) {
    if (offset > a->size || n > a->size - offset)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s: truncated zip archive (needs bytes %llu..%llu of %llu)",
                        a->path, (unsigned long long)offset, (unsigned long long)(offset + n),
                        (unsigned long long)a->size);
    if (fseeko(a->f, (off_t)offset, SEEK_SET) != 0 || fread(buf, 1, n, a->f) != n)
        return oct_fail(err, OCTET_ERR_IO, "%s: read failed: %s", a->path,
                        ferror(a->f) ? strerror(errno) : "unexpected end of file");
    return 0;
}

static int archive_open(archive *a, const char *path, octet_error *err) {
    a->path = path;
    a->f = fopen(path, "rb");
    if (!a->f) return oct_fail(err, OCTET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    off_t end;
    if (fseeko(a->f, 0, SEEK_END) != 0 || (end = ftello(a->f)) < 0) {
        fclose(a->f);
        return oct_fail(err, OCTET_ERR_IO, "%s: cannot determine the file size", path);
    }
    a->size = (uint64_t)end;
    return 0;
}

/* Finds the end-of-central-directory record and returns the member count and the central
   directory's extent. */
static int find_central_dir(archive *a, uint64_t *cd_offset, uint64_t *cd_size, int *count,
                            octet_error *err) {
    if (a->size < EOCD_SIZE)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s: not a zip archive (only %llu bytes)", a->path,
                        (unsigned long long)a->size);
    /* The record sits at the end, followed by a comment of up to 64 KiB. */
    size_t tail = a->size < EOCD_SIZE + MAX_COMMENT + 20 ? (size_t)a->size : EOCD_SIZE + MAX_COMMENT + 20;
    uint8_t *buf = malloc(tail);
    if (!buf) return oct_fail(err, OCTET_ERR_NOMEM, "%s: out of memory", a->path);
    if (archive_read_at(a, a->size - tail, buf, tail, err)) {
        free(buf);
        return -1;
    }
    long at = -1;
    for (long i = (long)tail - EOCD_SIZE; i >= 0; i--) {
        if (buf[i] == 'P' && buf[i + 1] == 'K' && buf[i + 2] == 5 && buf[i + 3] == 6 &&
            (size_t)i + EOCD_SIZE + rd16(buf + i + 20) == tail) {
            at = i;
            break;
        }
    }
    if (at < 0) {
        free(buf);
        return oct_fail(err, OCTET_ERR_FORMAT, "%s: not a zip archive (no end-of-central-directory record)",
                        a->path);
    }
    const uint8_t *e = buf + at;
    uint16_t disk = rd16(e + 4), cd_disk = rd16(e + 6), n_disk = rd16(e + 8), n_total = rd16(e + 10);
    uint32_t size = rd32(e + 12), offset = rd32(e + 16);
    /* A ZIP64 end-of-central-directory locator sits just before the record. */
    int zip64_locator = at >= 20 && rd32(buf + at - 20) == 0x07064b50u;
    free(buf);
    if (zip64_locator || n_total == 0xffff || size == U32_MAX_FIELD || offset == U32_MAX_FIELD)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s: ZIP64 archives (> 4 GB or > 65535 members) are not supported",
                        a->path);
    if (disk != 0 || cd_disk != 0 || n_disk != n_total)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s: multi-volume zip archives are not supported", a->path);
    if ((uint64_t)offset + size > a->size)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s: central directory lies outside the file", a->path);
    *cd_offset = offset;
    *cd_size = size;
    *count = n_total;
    return 0;
}

void oct_npz_entries_free(oct_npz_entry *entries, int count) {
    if (!entries) return;
    for (int i = 0; i < count; i++) free(entries[i].name);
    free(entries);
}

static int list_open(archive *a, oct_npz_entry **entries, int *count, octet_error *err) {
    uint64_t cd_offset = 0, cd_size = 0;
    int n = 0;
    *entries = NULL;
    *count = 0;
    if (find_central_dir(a, &cd_offset, &cd_size, &n, err)) return -1;
    uint8_t *cd = malloc(cd_size ? (size_t)cd_size : 1);
    oct_npz_entry *list = calloc(n ? (size_t)n : 1, sizeof *list);
    if (!cd || !list) {
        free(cd);
        free(list);
        return oct_fail(err, OCTET_ERR_NOMEM, "%s: out of memory", a->path);
    }
    if (archive_read_at(a, cd_offset, cd, (size_t)cd_size, err)) goto fail;
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (cd_size - pos < CDIR_SIZE || rd32(cd + pos) != 0x02014b50u) {
            oct_fail(err, OCTET_ERR_FORMAT, "%s: central directory entry %d is malformed", a->path, i);
            goto fail;
        }
        const uint8_t *c = cd + pos;
        uint16_t flags = rd16(c + 8), method = rd16(c + 10);
        uint32_t crc = rd32(c + 16), csize = rd32(c + 20), usize = rd32(c + 24);
        uint16_t name_len = rd16(c + 28), extra_len = rd16(c + 30), comment_len = rd16(c + 32);
        uint32_t offset = rd32(c + 42);
        size_t entry_size = (size_t)CDIR_SIZE + name_len + extra_len + comment_len;
        if (cd_size - pos < entry_size) {
            oct_fail(err, OCTET_ERR_FORMAT, "%s: central directory entry %d runs past its end", a->path, i);
            goto fail;
        }
        list[i].name = malloc((size_t)name_len + 1);
        if (!list[i].name) {
            oct_fail(err, OCTET_ERR_NOMEM, "%s: out of memory", a->path);
            goto fail;
        }
        memcpy(list[i].name, c + CDIR_SIZE, name_len);
        list[i].name[name_len] = '\0';
        if (memchr(list[i].name, '\0', name_len)) {
            oct_fail(err, OCTET_ERR_FORMAT, "%s: member %d has a NUL byte in its name", a->path, i);
            goto fail;
        }
        if (csize == U32_MAX_FIELD || usize == U32_MAX_FIELD || offset == U32_MAX_FIELD) {
            oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s: member '%s' needs ZIP64 (> 4 GB), which is not supported",
                     a->path, list[i].name);
            goto fail;
        }
        if (flags & 1) {
            oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s: member '%s' is encrypted", a->path, list[i].name);
            goto fail;
        }
        list[i].method = method;
        list[i].crc = crc;
        list[i].compressed_size = csize;
        list[i].size = usize;
        list[i].header_offset = offset;
        pos += entry_size;
    }
    free(cd);
    *entries = list;
    *count = n;
    return 0;
fail:
    free(cd);
    oct_npz_entries_free(list, n); /* calloc'ed: names not yet read are NULL */
    return -1;
}

int oct_npz_list(const char *path, oct_npz_entry **entries, int *count, octet_error *err) {
    archive a;
    if (archive_open(&a, path, err)) return -1;
    int rc = list_open(&a, entries, count, err);
    fclose(a.f);
    return rc;
}

/* Decompresses one member into a malloc'ed buffer of exactly e->size bytes, CRC-checked. */
static int read_member(archive *a, const oct_npz_entry *e, uint8_t **data, octet_error *err) {
    uint8_t h[LOCAL_SIZE];
    if (archive_read_at(a, e->header_offset, h, LOCAL_SIZE, err)) return -1;
    if (rd32(h) != 0x04034b50u)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s: member '%s': bad local header signature", a->path, e->name);
    if (rd16(h + 8) != e->method)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s: member '%s': local header disagrees with the directory",
                        a->path, e->name);
    if (e->method != 0 && e->method != 8)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED,
                        "%s: member '%s' uses compression method %u (only stored and deflate are supported)",
                        a->path, e->name, e->method);
    uint64_t start = e->header_offset + LOCAL_SIZE + rd16(h + 26) + rd16(h + 28);
    if (start > a->size || e->compressed_size > a->size - start)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s: member '%s' runs past the end of the archive", a->path, e->name);
    if (e->method == 0 && e->compressed_size != e->size)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s: stored member '%s' has different packed and unpacked sizes",
                        a->path, e->name);
    if (e->method == 8 && e->size / DEFLATE_MAX_RATIO > e->compressed_size)
        return oct_fail(err, OCTET_ERR_FORMAT,
                        "%s: member '%s' declares %llu bytes from %llu compressed, more than DEFLATE can encode",
                        a->path, e->name, (unsigned long long)e->size, (unsigned long long)e->compressed_size);
    if (e->size > SIZE_MAX - 1 || e->compressed_size > SIZE_MAX - 1)
        return oct_fail(err, OCTET_ERR_NOMEM, "%s: member '%s' is too large", a->path, e->name);

    uint8_t *out = malloc(e->size ? (size_t)e->size : 1);
    if (!out) return oct_fail(err, OCTET_ERR_NOMEM, "%s: member '%s': cannot allocate %llu bytes", a->path, e->name,
                              (unsigned long long)e->size);
    if (e->method == 0) {
        if (archive_read_at(a, start, out, (size_t)e->size, err)) goto fail;
    } else {
        uint8_t *packed = malloc(e->compressed_size ? (size_t)e->compressed_size : 1);
        if (!packed) {
            oct_fail(err, OCTET_ERR_NOMEM, "%s: member '%s': cannot allocate %llu bytes", a->path, e->name,
                     (unsigned long long)e->compressed_size);
            goto fail;
        }
        size_t got;
        int rc = archive_read_at(a, start, packed, (size_t)e->compressed_size, err);
        if (!rc) rc = oct_inflate(packed, (size_t)e->compressed_size, out, (size_t)e->size, &got, NULL, err);
        free(packed);
        if (rc) {
            oct_fail_context(err, "%s: member '%s'", a->path, e->name);
            goto fail;
        }
        if (got != e->size) {
            oct_fail(err, OCTET_ERR_FORMAT, "%s: member '%s' decodes to %zu bytes, the directory says %llu",
                     a->path, e->name, got, (unsigned long long)e->size);
            goto fail;
        }
    }
    if (oct_crc32(0, out, (size_t)e->size) != e->crc) {
        oct_fail(err, OCTET_ERR_FORMAT, "%s: member '%s' fails its CRC-32 check (corrupt archive)", a->path,
                 e->name);
        goto fail;
    }
    *data = out;
    return 0;
fail:
    free(out);
    return -1;
}

/* "x" matches the member "x.npy" (numpy's key) and "x.npy" matches itself. */
static int name_matches(const char *member, const char *array) {
    size_t m = strlen(member), n = strlen(array);
    if (m == n + 4 && strncmp(member, array, n) == 0 && strcmp(member + n, ".npy") == 0) return 1;
    return strcmp(member, array) == 0;
}

int oct_npz_read(const char *path, const char *array, oct_tensor *t, octet_error *err) {
    archive a;
    oct_npz_entry *entries;
    int count;
    memset(t, 0, sizeof *t);
    if (archive_open(&a, path, err)) return -1;
    if (list_open(&a, &entries, &count, err)) {
        fclose(a.f);
        return -1;
    }
    int found = -1;
    for (int i = 0; i < count && found < 0; i++)
        if (name_matches(entries[i].name, array)) found = i;
    int rc = -1;
    if (found < 0) {
        char names[256] = "";
        for (int i = 0; i < count; i++) {
            size_t used = strlen(names);
            const char *nm = entries[i].name;
            size_t len = strlen(nm);
            if (len > 4 && strcmp(nm + len - 4, ".npy") == 0) len -= 4;
            snprintf(names + used, sizeof names - used, "%s%.*s", i ? ", " : "", (int)len, nm);
        }
        oct_fail(err, OCTET_ERR_ARG, "%s: no array '%s' (the archive holds: %s)", path, array,
                 count ? names : "nothing");
    } else {
        uint8_t *bytes = NULL;
        if (read_member(&a, &entries[found], &bytes, err) == 0) {
            rc = oct_npy_parse(bytes, (size_t)entries[found].size, t, err);
            if (rc) oct_fail_context(err, "%s: array '%s'", path, array);
            free(bytes);
        }
    }
    oct_npz_entries_free(entries, count);
    fclose(a.f);
    return rc;
}

int oct_npz_read_sample(const char *path, const char *array, int64_t index, oct_tensor *t,
                        octet_error *err) {
    oct_tensor all;
    if (oct_npz_read(path, array, &all, err)) return -1;
    memset(t, 0, sizeof *t);
    if (all.rank < 1) {
        octet_tensor_release(&all);
        return oct_fail(err, OCTET_ERR_SHAPE, "%s: array '%s' is a scalar; it has no samples to index", path,
                        array);
    }
    if (index < 0 || index >= all.dims[0]) {
        int64_t n = all.dims[0];
        octet_tensor_release(&all);
        return oct_fail(err, OCTET_ERR_ARG, "%s: array '%s' has %lld samples; index %lld is out of range", path,
                        array, (long long)n, (long long)index);
    }
    int64_t numel = octet_tensor_numel(&all);
    size_t sample_bytes = (size_t)(numel / all.dims[0]) * octet_dtype_size(all.dtype);
    *t = all;
    t->dims[0] = 1;
    t->data = malloc(sample_bytes ? sample_bytes : 1);
    if (!t->data) {
        octet_tensor_release(&all);
        return oct_fail(err, OCTET_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(t->data, (const uint8_t *)all.data + (size_t)index * sample_bytes, sample_bytes);
    octet_tensor_release(&all);
    return 0;
}
