/* Data sets in .npz files (see dataset.h). x stays in its stored dtype; each batch is converted
   to float32 in the model's layout: channel axis added or HWC transposed to CHW, then (with a
   --preprocess spec) bilinear resize, gray -> RGB, scale and per-channel normalisation. */
#include "dataset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "npz.h"

#define MAX_CLASS_NAMES_BYTES (1u << 20) /* a class_names member beyond this is not a name list */
#define MAX_CLASS_NAME 256

struct oct_dataset {
    char *path;
    oct_tensor x;
    oct_preprocess pp;
    int64_t *labels;
    int label_rank;
    int64_t label_dims[OCTET_MAX_RANK];
    char **class_names;
    int n_class_names;
};

/* ---- --preprocess specs ---- */

static int parse_floats(const char *text, float *out, int max, int *count, const char *what, octet_error *err) {
    int n = 0;
    const char *p = text;
    for (;;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v))
            return oct_fail(err, OCTET_ERR_ARG, "--preprocess: %s needs numbers separated by ':', got '%s'", what,
                            text);
        if (n == max)
            return oct_fail(err, OCTET_ERR_ARG, "--preprocess: %s takes 1 or %d values, got more in '%s'", what,
                            max, text);
        out[n++] = (float)v;
        if (*end == '\0') break;
        if (*end != ':')
            return oct_fail(err, OCTET_ERR_ARG, "--preprocess: %s needs numbers separated by ':', got '%s'", what,
                            text);
        p = end + 1;
    }
    if (n != 1 && n != max)
        return oct_fail(err, OCTET_ERR_ARG, "--preprocess: %s takes 1 or %d values, got %d", what, max, n);
    *count = n;
    return 0;
}

int oct_preprocess_parse(const char *spec, oct_preprocess *pp, octet_error *err) {
    memset(pp, 0, sizeof *pp);
    pp->scale = 1.f;
    if (!spec || !*spec) return oct_fail(err, OCTET_ERR_ARG, "--preprocess: empty spec");
    if (strcmp(spec, "none") == 0) return 0;
    pp->enabled = 1;
    if (strcmp(spec, "raw") == 0) return 0; /* resize / gray->RGB only, values as stored */
    if (strcmp(spec, "unit") == 0) {
        pp->scale = 1.f / 255.f;
        return 0;
    }
    if (strcmp(spec, "imagenet") == 0) {
        static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        pp->scale = 1.f / 255.f;
        pp->n_channels = 3;
        memcpy(pp->mean, mean, sizeof mean);
        memcpy(pp->std, std, sizeof std);
        return 0;
    }
    /* key=value[,key=value]... */
    char buf[256];
    if (strlen(spec) >= sizeof buf) return oct_fail(err, OCTET_ERR_ARG, "--preprocess: spec is too long");
    strcpy(buf, spec);
    int n_mean = 0, n_std = 0, have_scale = 0;
    float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq)
            return oct_fail(err, OCTET_ERR_ARG,
                            "--preprocess: '%s' is not KEY=VALUE (expected none, raw, unit, imagenet or "
                            "scale=S,mean=M[:M:M],std=S[:S:S])",
                            item);
        *eq = '\0';
        const char *key = item, *val = eq + 1;
        int n;
        if (strcmp(key, "scale") == 0 && !have_scale) {
            if (parse_floats(val, &pp->scale, 1, &n, "scale", err)) return -1;
            have_scale = 1;
        } else if (strcmp(key, "mean") == 0 && !n_mean) {
            if (parse_floats(val, mean, 3, &n_mean, "mean", err)) return -1;
        } else if (strcmp(key, "std") == 0 && !n_std) {
            if (parse_floats(val, std, 3, &n_std, "std", err)) return -1;
        } else {
            return oct_fail(err, OCTET_ERR_ARG, "--preprocess: unknown or repeated key '%s' (keys: scale, mean, std)",
                            key);
        }
    }
    /* one value is shared by every channel; 1 mean with 3 stds (or the reverse) is fine */
    pp->n_channels = n_mean > n_std ? n_mean : n_std;
    for (int c = 0; c < 3; c++) {
        pp->mean[c] = n_mean == 1 ? mean[0] : mean[c];
        pp->std[c] = n_std == 1 ? std[0] : std[c];
        if (c < pp->n_channels && !(pp->std[c] > 0))
            return oct_fail(err, OCTET_ERR_ARG, "--preprocess: std must be positive, got %g", (double)pp->std[c]);
    }
    return 0;
}

/* ---- class_names: a numpy unicode ('<U') or bytes ('|S') array, which .npy readers for numbers refuse ---- */

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads one small archive member whole (the npz reader parses members as numeric .npy). */
static int read_small_member(const char *path, const oct_npz_entry *e, uint8_t **out, octet_error *err) {
    if (e->size > MAX_CLASS_NAMES_BYTES || e->compressed_size > MAX_CLASS_NAMES_BYTES)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s: class_names is %llu bytes, more than a list of names holds", path,
                        (unsigned long long)e->size);
    if (e->method != 0 && e->method != 8)
        return oct_fail(err, OCTET_ERR_UNSUPPORTED, "%s: class_names uses zip method %u", path, e->method);
    FILE *f = fopen(path, "rb");
    if (!f) return oct_fail(err, OCTET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t h[30];
    uint8_t *packed = NULL, *data = NULL;
    int rc = -1;
    if (fseeko(f, (off_t)e->header_offset, SEEK_SET) != 0 || fread(h, 1, 30, f) != 30 || rd32(h) != 0x04034b50u) {
        oct_fail(err, OCTET_ERR_FORMAT, "%s: class_names: bad local zip header", path);
        goto done;
    }
    long skip = (long)(h[26] | h[27] << 8) + (long)(h[28] | h[29] << 8);
    packed = malloc(e->compressed_size + 1);
    data = malloc(e->size + 1);
    if (!packed || !data) {
        oct_fail(err, OCTET_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (fseeko(f, skip, SEEK_CUR) != 0 || fread(packed, 1, e->compressed_size, f) != e->compressed_size) {
        oct_fail(err, OCTET_ERR_FORMAT, "%s: class_names runs past the end of the archive", path);
        goto done;
    }
    size_t got = e->compressed_size;
    if (e->method == 0)
        memcpy(data, packed, got);
    else if (oct_inflate(packed, e->compressed_size, data, e->size, &got, NULL, err)) {
        oct_fail_context(err, "%s: class_names", path);
        goto done;
    }
    if (got != e->size || oct_crc32(0, data, got) != e->crc) {
        oct_fail(err, OCTET_ERR_FORMAT, "%s: class_names fails its size or CRC-32 check", path);
        goto done;
    }
    *out = data;
    data = NULL;
    rc = 0;
done:
    free(packed);
    free(data);
    fclose(f);
    return rc;
}

/* Appends code point cp as UTF-8; returns the new length or -1 when it does not fit. */
static int put_utf8(char *s, int len, int cap, uint32_t cp) {
    uint8_t b[4];
    int n;
    if (cp < 0x80) b[0] = (uint8_t)cp, n = 1;
    else if (cp < 0x800) b[0] = (uint8_t)(0xc0 | cp >> 6), b[1] = (uint8_t)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        b[0] = (uint8_t)(0xe0 | cp >> 12), b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f)),
        b[2] = (uint8_t)(0x80 | (cp & 0x3f)), n = 3;
    else if (cp < 0x110000)
        b[0] = (uint8_t)(0xf0 | cp >> 18), b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f)),
        b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f)), b[3] = (uint8_t)(0x80 | (cp & 0x3f)), n = 4;
    else return -1;
    if (len + n >= cap) return -1;
    memcpy(s + len, b, (size_t)n);
    return len + n;
}

/* Parses a 1-D '<Uk' or '|Sk' .npy: header dict, then count fixed-width NUL-padded strings. */
static int parse_names(const char *path, const uint8_t *b, size_t size, oct_dataset *ds, octet_error *err) {
    if (size < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s: class_names is not an .npy array", path);
    size_t hstart = b[6] == 1 ? 10 : 12;
    if (size < hstart) return oct_fail(err, OCTET_ERR_FORMAT, "%s: class_names is truncated", path);
    size_t hlen = b[6] == 1 ? (size_t)(b[8] | b[9] << 8) : rd32(b + 8);
    if (hlen > size - hstart || hlen > 4096)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s: class_names has a malformed .npy header", path);
    char hdr[4097];
    memcpy(hdr, b + hstart, hlen);
    hdr[hlen] = '\0';
    const char *d = strstr(hdr, "'descr':"), *s = strstr(hdr, "'shape':");
    char kind = 0, order = 0;
    int width = 0;
    long long count = -1;
    if (d) sscanf(d, "'descr': '%c%c%d'", &order, &kind, &width);
    if (s && sscanf(s, "'shape': (%lld,)", &count) != 1) count = -1;
    if (!((kind == 'U' && order == '<') || (kind == 'S' && order == '|')) || width <= 0 || width > MAX_CLASS_NAME)
        return oct_fail(err, OCTET_ERR_FORMAT,
                        "%s: class_names must be a 1-D array of strings ('<U' or '|S', at most %d characters)", path,
                        MAX_CLASS_NAME);
    size_t esize = kind == 'U' ? 4u * (size_t)width : (size_t)width;
    if (count < 0 || count > 1 << 20 || (size_t)count * esize != size - hstart - hlen)
        return oct_fail(err, OCTET_ERR_FORMAT, "%s: class_names: shape and size disagree (1-D arrays only)", path);
    ds->class_names = calloc(count ? (size_t)count : 1, sizeof *ds->class_names);
    if (!ds->class_names) return oct_fail(err, OCTET_ERR_NOMEM, "%s: out of memory", path);
    ds->n_class_names = (int)count;
    const uint8_t *p = b + hstart + hlen;
    for (long long i = 0; i < count; i++, p += esize) {
        int cap = 4 * width + 1, len = 0;
        char *name = malloc((size_t)cap);
        if (!name) return oct_fail(err, OCTET_ERR_NOMEM, "%s: out of memory", path);
        ds->class_names[i] = name;
        for (int j = 0; j < width; j++) {
            uint32_t cp = kind == 'U' ? rd32(p + 4 * j) : p[j];
            if (cp == 0) break;
            if ((len = put_utf8(name, len, cap, cp)) < 0)
                return oct_fail(err, OCTET_ERR_FORMAT, "%s: class_names[%lld] is not valid text", path, i);
        }
        name[len] = '\0';
    }
    return 0;
}

static int read_class_names(const char *path, oct_dataset *ds, octet_error *err) {
    oct_npz_entry *entries;
    int count;
    if (oct_npz_list(path, &entries, &count, err)) return -1;
    int rc = 0;
    for (int i = 0; i < count; i++) {
        if (strcmp(entries[i].name, "class_names.npy") != 0 && strcmp(entries[i].name, "class_names") != 0) continue;
        uint8_t *bytes = NULL;
        rc = read_small_member(path, &entries[i], &bytes, err);
        if (!rc) rc = parse_names(path, bytes, (size_t)entries[i].size, ds, err);
        free(bytes);
        break;
    }
    oct_npz_entries_free(entries, count);
    return rc;
}

/* ---- opening ---- */

static int has_member(const char *path, const char *name, int *found, octet_error *err) {
    oct_npz_entry *entries;
    int count;
    if (oct_npz_list(path, &entries, &count, err)) return -1;
    char with_ext[64];
    snprintf(with_ext, sizeof with_ext, "%s.npy", name);
    *found = 0;
    for (int i = 0; i < count; i++)
        if (strcmp(entries[i].name, name) == 0 || strcmp(entries[i].name, with_ext) == 0) *found = 1;
    oct_npz_entries_free(entries, count);
    return 0;
}

static int read_labels(oct_dataset *ds, octet_error *err) {
    int found;
    if (has_member(ds->path, "y", &found, err)) return -1;
    if (!found) return 0;
    oct_tensor y;
    if (oct_npz_read(ds->path, "y", &y, err)) return -1;
    int rc = -1;
    int64_t n = octet_tensor_numel(&y);
    if (y.rank < 1 || y.dims[0] != ds->x.dims[0]) {
        oct_fail(err, OCTET_ERR_SHAPE, "%s: y has %lld entries along axis 0 but x has %lld samples", ds->path,
                 y.rank < 1 ? 0LL : (long long)y.dims[0], (long long)ds->x.dims[0]);
        goto done;
    }
    if (y.dtype != OCTET_INT64 && y.dtype != OCTET_INT32 && y.dtype != OCTET_UINT8 && y.dtype != OCTET_INT8) {
        oct_fail(err, OCTET_ERR_SHAPE, "%s: y has dtype %s; labels must be integers", ds->path,
                 octet_dtype_name(y.dtype));
        goto done;
    }
    ds->labels = malloc((size_t)(n ? n : 1) * sizeof *ds->labels);
    if (!ds->labels) {
        oct_fail(err, OCTET_ERR_NOMEM, "%s: out of memory for %lld labels", ds->path, (long long)n);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        switch (y.dtype) {
        case OCTET_INT64: ds->labels[i] = ((const int64_t *)y.data)[i]; break;
        case OCTET_INT32: ds->labels[i] = ((const int32_t *)y.data)[i]; break;
        case OCTET_UINT8: ds->labels[i] = ((const uint8_t *)y.data)[i]; break;
        default: ds->labels[i] = ((const int8_t *)y.data)[i]; break;
        }
    }
    ds->label_rank = y.rank;
    memcpy(ds->label_dims, y.dims, sizeof ds->label_dims);
    rc = 0;
done:
    octet_tensor_release(&y);
    return rc;
}

oct_dataset *oct_dataset_open(const char *path, const oct_preprocess *pp, octet_error *err) {
    oct_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = strdup(path))) {
        free(ds);
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (pp) ds->pp = *pp;
    if (oct_npz_read(path, "x", &ds->x, err)) goto fail;
    if (ds->x.rank < 2) {
        oct_fail(err, OCTET_ERR_SHAPE, "%s: x has rank %d; it must be [N, ...] samples", path, ds->x.rank);
        goto fail;
    }
    if (ds->x.dtype != OCTET_FLOAT && ds->x.dtype != OCTET_UINT8 && ds->x.dtype != OCTET_INT8 &&
        ds->x.dtype != OCTET_INT32) {
        oct_fail(err, OCTET_ERR_SHAPE, "%s: x has dtype %s; expected float32 or uint8", path,
                 octet_dtype_name(ds->x.dtype));
        goto fail;
    }
    if (read_labels(ds, err) || read_class_names(path, ds, err)) goto fail;
    return ds;
fail:
    oct_dataset_free(ds);
    return NULL;
}

void oct_dataset_free(oct_dataset *ds) {
    if (!ds) return;
    octet_tensor_release(&ds->x);
    for (int i = 0; i < ds->n_class_names; i++) free(ds->class_names[i]);
    free(ds->class_names);
    free(ds->labels);
    free(ds->path);
    free(ds);
}

int64_t oct_dataset_count(const oct_dataset *ds) { return ds->x.dims[0]; }

const int64_t *oct_dataset_labels(const oct_dataset *ds, int *rank, const int64_t **dims) {
    if (rank) *rank = ds->labels ? ds->label_rank : 0;
    if (dims) *dims = ds->label_dims;
    return ds->labels;
}

const char *const *oct_dataset_class_names(const oct_dataset *ds, int *count) {
    if (count) *count = ds->n_class_names;
    return (const char *const *)ds->class_names;
}

/* ---- batches ---- */

/* Where sample values live: channel count, spatial dims and whether the channel is the last axis. */
typedef struct {
    int64_t channels;
    int n_spatial;
    int64_t spatial[OCTET_MAX_RANK];
    int channel_last;
} sample_layout;

static int64_t spatial_size(const sample_layout *l) {
    int64_t n = 1;
    for (int d = 0; d < l->n_spatial; d++) n *= l->spatial[d];
    return n;
}

static const char *shape_str(int rank, const int64_t *dims, char *buf, size_t cap) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < rank && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, d ? ", %lld" : "%lld", (long long)dims[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

/* How x's samples map onto the model input [N, C, spatial...]: the same rank (channel first, or
   for raw uint8 images [N, H, W, C] channel last), or one less (the channel axis is added). */
static int source_layout(const oct_dataset *ds, int input_rank, const int64_t *input_dims, sample_layout *src,
                         octet_error *err) {
    const oct_tensor *x = &ds->x;
    char xs[128], ms[128];
    memset(src, 0, sizeof *src);
    if (input_rank >= 3 && x->rank == input_rank - 1) {
        src->channels = 1;
        src->n_spatial = x->rank - 1;
        memcpy(src->spatial, x->dims + 1, (size_t)src->n_spatial * sizeof(int64_t));
        return 0;
    }
    if (input_rank >= 2 && x->rank == input_rank) {
        /* Raw uint8 images are stored HWC, unless axis 1 already holds the model's channels and
           the last axis does not (a uint8 array saved in NCHW). Float data are model-ready. */
        int64_t want_c = input_dims[1];
        int hwc = input_rank == 4 && x->dtype == OCTET_UINT8 && !(x->dims[1] == want_c && x->dims[3] != want_c);
        src->channel_last = hwc;
        src->channels = hwc ? x->dims[3] : x->dims[1];
        src->n_spatial = x->rank - 2;
        memcpy(src->spatial, x->dims + (hwc ? 1 : 2), (size_t)src->n_spatial * sizeof(int64_t));
        return 0;
    }
    return oct_fail(err, OCTET_ERR_SHAPE, "%s: x %s has rank %d; the model input %s needs rank %d or %d", ds->path,
                    shape_str(x->rank, x->dims, xs, sizeof xs), x->rank,
                    shape_str(input_rank, input_dims, ms, sizeof ms), input_rank, input_rank - 1);
}

/* Value e of sample i (flat index into the sample as stored). */
static float load_value(const oct_tensor *x, int64_t flat) {
    switch (x->dtype) {
    case OCTET_UINT8: return ((const uint8_t *)x->data)[flat];
    case OCTET_INT8: return ((const int8_t *)x->data)[flat];
    case OCTET_INT32: return (float)((const int32_t *)x->data)[flat];
    default: return ((const float *)x->data)[flat];
    }
}

/* Channel c of sample i as a float plane of `plane` values. */
static void load_plane(const oct_tensor *x, const sample_layout *l, int64_t i, int64_t c, float *out) {
    int64_t plane = spatial_size(l), base = i * plane * l->channels;
    if (l->channel_last)
        for (int64_t p = 0; p < plane; p++) out[p] = load_value(x, base + p * l->channels + c);
    else
        for (int64_t p = 0; p < plane; p++) out[p] = load_value(x, base + c * plane + p);
}

/* Source index of a destination pixel: torch's area_pixel_compute_source_index, clamped at 0. */
void oct_resize_bilinear(const float *src, int64_t sh, int64_t sw, float *dst, int64_t dh, int64_t dw) {
    double ry = (double)sh / (double)dh, rx = (double)sw / (double)dw;
    for (int64_t y = 0; y < dh; y++) {
        double fy = ((double)y + 0.5) * ry - 0.5;
        if (fy < 0) fy = 0;
        int64_t y0 = (int64_t)fy, y1 = y0 < sh - 1 ? y0 + 1 : y0;
        float ly = (float)(fy - (double)y0);
        for (int64_t x = 0; x < dw; x++) {
            double fx = ((double)x + 0.5) * rx - 0.5;
            if (fx < 0) fx = 0;
            int64_t x0 = (int64_t)fx, x1 = x0 < sw - 1 ? x0 + 1 : x0;
            float lx = (float)(fx - (double)x0);
            float top = src[y0 * sw + x0] * (1 - lx) + src[y0 * sw + x1] * lx;
            float bot = src[y1 * sw + x0] * (1 - lx) + src[y1 * sw + x1] * lx;
            dst[y * dw + x] = top * (1 - ly) + bot * ly;
        }
    }
}

int oct_dataset_batch(const oct_dataset *ds, int64_t start, int count, int input_rank, const int64_t *input_dims,
                      octet_tensor *x, octet_error *err) {
    memset(x, 0, sizeof *x);
    int64_t n = oct_dataset_count(ds);
    if (count <= 0 || start < 0 || start > n || count > n - start)
        return oct_fail(err, OCTET_ERR_ARG, "%s: samples [%lld, %lld) are outside the %lld samples of x", ds->path,
                        (long long)start, (long long)start + count, (long long)n);
    if (input_rank < 2 || input_rank > OCTET_MAX_RANK)
        return oct_fail(err, OCTET_ERR_SHAPE, "the model input has rank %d; data sets feed [N, C, ...] inputs",
                        input_rank);
    sample_layout src, dst;
    if (source_layout(ds, input_rank, input_dims, &src, err)) return -1;
    /* Dims the model leaves open (<= 0) are taken from the data. */
    dst.channel_last = 0;
    dst.n_spatial = input_rank - 2;
    dst.channels = input_dims[1] > 0 ? input_dims[1] : src.channels;
    for (int d = 0; d < dst.n_spatial; d++) dst.spatial[d] = input_dims[2 + d] > 0 ? input_dims[2 + d] : src.spatial[d];

    const oct_preprocess *pp = &ds->pp;
    int same_spatial = 1;
    for (int d = 0; d < dst.n_spatial; d++) same_spatial &= src.spatial[d] == dst.spatial[d];
    int channels_fit = src.channels == dst.channels || (pp->enabled && src.channels == 1 && dst.channels == 3);
    int resize = !same_spatial && pp->enabled && dst.n_spatial == 2;
    if (!channels_fit || (!same_spatial && !resize)) {
        int64_t sd[OCTET_MAX_RANK], md[OCTET_MAX_RANK];
        sd[0] = md[0] = count;
        sd[1] = src.channels;
        md[1] = dst.channels;
        memcpy(sd + 2, src.spatial, (size_t)src.n_spatial * sizeof(int64_t));
        memcpy(md + 2, dst.spatial, (size_t)dst.n_spatial * sizeof(int64_t));
        char ss[128], ms[128];
        const char *how = !pp->enabled ? "; --preprocess resizes 2-D images and repeats gray to RGB"
                          : dst.n_spatial != 2 ? "; only 2-D images are resized"
                                               : "; only 1 channel can be repeated to 3";
        return oct_fail(err, OCTET_ERR_SHAPE, "%s: samples %s (x as %s) do not fit the model input %s%s", ds->path,
                        shape_str(2 + src.n_spatial, sd, ss, sizeof ss),
                        src.channel_last ? "NHWC -> NCHW" : src.n_spatial + 2 > ds->x.rank ? "with a channel axis added"
                                                                                            : "stored",
                        shape_str(input_rank, md, ms, sizeof ms), how);
    }
    if (pp->enabled && pp->n_channels == 3 && dst.channels != 3)
        return oct_fail(err, OCTET_ERR_SHAPE,
                        "--preprocess gives 3 mean/std values but the model input has %lld channels",
                        (long long)dst.channels);

    int64_t src_plane = spatial_size(&src), dst_plane = spatial_size(&dst);
    if (dst_plane <= 0 || dst.channels <= 0 || dst_plane > INT64_MAX / dst.channels / count ||
        dst_plane * dst.channels * count > (int64_t)(SIZE_MAX / sizeof(float) / 2))
        return oct_fail(err, OCTET_ERR_NOMEM, "%s: a batch of %d samples of the model input is too large", ds->path,
                        count);
    int64_t sample_size = dst.channels * dst_plane;
    float *out = malloc((size_t)(sample_size * count) * sizeof(float));
    if (!out) return oct_fail(err, OCTET_ERR_NOMEM, "%s: cannot allocate a batch of %d samples", ds->path, count);
    int failed = 0;
#pragma omp parallel for schedule(dynamic) reduction(| : failed)
    for (int s = 0; s < count; s++) {
        float *plane = resize ? malloc((size_t)src_plane * sizeof(float)) : NULL;
        if (resize && !plane) {
            failed = 1;
            continue;
        }
        for (int64_t c = 0; c < dst.channels; c++) {
            float *o = out + s * sample_size + c * dst_plane;
            int64_t sc = src.channels == 1 ? 0 : c;
            if (resize) {
                load_plane(&ds->x, &src, start + s, sc, plane);
                oct_resize_bilinear(plane, src.spatial[0], src.spatial[1], o, dst.spatial[0], dst.spatial[1]);
            } else {
                load_plane(&ds->x, &src, start + s, sc, o);
            }
            if (!pp->enabled) continue;
            float scale = pp->scale, mean = 0.f, inv_std = 1.f;
            if (pp->n_channels) {
                int k = pp->n_channels == 1 ? 0 : (int)c;
                mean = pp->mean[k];
                inv_std = 1.f / pp->std[k];
            }
            for (int64_t p = 0; p < dst_plane; p++) o[p] = (o[p] * scale - mean) * inv_std;
        }
        free(plane);
    }
    if (failed) {
        free(out);
        return oct_fail(err, OCTET_ERR_NOMEM, "%s: out of memory while resizing", ds->path);
    }
    x->dtype = OCTET_FLOAT;
    x->rank = input_rank;
    x->dims[0] = count;
    x->dims[1] = dst.channels;
    memcpy(x->dims + 2, dst.spatial, (size_t)dst.n_spatial * sizeof(int64_t));
    x->data = out;
    return 0;
}
