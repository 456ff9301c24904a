/* Helpers shared by the octet commands. */
#include "cli_util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "loader.h"
#include "npz.h"

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "octet: %s: %s (see 'octet help %s')\n", cmd, msg, cmd);
    else
        fprintf(stderr, "octet: %s (see 'octet --help')\n", msg);
    return CLI_EXIT_USAGE;
}

int cli_runtime_error(const octet_error *err) {
    /* Messages are single lines by convention; make sure of it so scripts can rely on that. */
    char msg[sizeof err->msg];
    const char *text = err->msg[0] ? err->msg : err->code ? octet_status_name(err->code) : "unknown failure";
    snprintf(msg, sizeof msg, "%s", text);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fprintf(stderr, "octet: error: %s\n", msg);
    return CLI_EXIT_FAIL;
}

bool cli_is_help(const char *arg) {
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int cli_flag_value(int argc, char **argv, int *i, const char *cmd, const char *name, const char **value) {
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0) return 0;
    if (arg[n] == '\0') {
        if (*i + 1 >= argc) {
            cli_usage_error(cmd, "option '%s' needs a value", name);
            return -1;
        }
        *value = argv[++*i];
        return 1;
    }
    int short_flag = name[0] == '-' && name[1] != '-';
    if (arg[n] == '=' && !short_flag) {
        *value = arg + n + 1;
        return 1;
    }
    if (short_flag) { /* -iFILE */
        *value = arg + n;
        return 1;
    }
    return 0;
}

int cli_parse_int(const char *cmd, const char *name, const char *text, int min, int max, int *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        cli_usage_error(cmd, "option '%s' needs an integer in [%d, %d], got '%s'", name, min, max, text);
        return -1;
    }
    *out = (int)v;
    return 0;
}

const char *cli_shape_str(int rank, const int64_t *dims, char *buf, size_t cap) {
    size_t used = 0;
    used += (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < rank && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", d ? ", " : "", (long long)dims[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

const char *cli_bytes_str(size_t bytes, char *buf, size_t cap) {
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        snprintf(buf, cap, "%zu B", bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 3) v /= 1024.0, u++;
    snprintf(buf, cap, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

void cli_file_name(const char *name, char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < cap; p++) {
        char c = *p;
        int keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                   c == '_' || c == '-';
        out[n++] = keep ? c : '_';
    }
    out[n] = '\0';
}

int cli_make_dir(const char *dir, octet_error *err) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return oct_fail(err, OCTET_ERR_ARG, "output directory name is too long");
    /* Create each missing prefix, then the directory itself. */
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return oct_fail(err, OCTET_ERR_IO, "cannot create directory '%s': %s", path, strerror(errno));
        *p = saved;
        if (saved == '\0') break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return oct_fail(err, OCTET_ERR_IO, "'%s' exists and is not a directory", dir);
    return 0;
}

/* Splits "FILE.npz:ARRAY[@INDEX]". Returns 1 if spec names an .npz member, 0 if not, -1 on error. */
static int split_npz_spec(const char *spec, char *path, size_t cap, const char **array, long long *index,
                          char *array_buf, size_t array_cap, octet_error *err) {
    const char *sep = strstr(spec, ".npz:");
    if (!sep) return 0;
    size_t plen = (size_t)(sep - spec) + 4;
    if (plen >= cap) return oct_fail(err, OCTET_ERR_ARG, "input path is too long");
    memcpy(path, spec, plen);
    path[plen] = '\0';
    const char *rest = sep + 5;
    const char *at = strrchr(rest, '@');
    size_t alen = at ? (size_t)(at - rest) : strlen(rest);
    if (alen == 0 || alen >= array_cap)
        return oct_fail(err, OCTET_ERR_ARG, "input '%s': expected FILE.npz:ARRAY or FILE.npz:ARRAY@INDEX", spec);
    memcpy(array_buf, rest, alen);
    array_buf[alen] = '\0';
    *array = array_buf;
    *index = -1;
    if (at) {
        char *end;
        errno = 0;
        *index = strtoll(at + 1, &end, 10);
        if (errno || end == at + 1 || *end || *index < 0)
            return oct_fail(err, OCTET_ERR_ARG, "input '%s': the index after '@' must be a non-negative integer",
                            spec);
    }
    return 1;
}

/* uint8 -> float32 in place of t's data. */
static int cast_u8_to_float(octet_tensor *t, octet_error *err) {
    int64_t n = octet_tensor_numel(t);
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float))
        return oct_fail(err, OCTET_ERR_NOMEM, "input is too large to convert to float32");
    float *f = malloc(n ? (size_t)n * sizeof(float) : 1);
    if (!f) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory converting the input to float32");
    const uint8_t *u = t->data;
    for (int64_t i = 0; i < n; i++) f[i] = (float)u[i];
    free(t->data);
    t->data = f;
    t->dtype = OCTET_FLOAT;
    return 0;
}

/* Image arrays are stored [N, H, W, C] (the skin data set); models take [N, C, H, W]. A plain
   reshape would scramble the channels, so such data are transposed instead. */
static bool is_hwc_for_chw(const octet_tensor *t, int want_rank, const int64_t *want_dims) {
    return t->rank == 4 && want_rank == 4 && t->dims[3] == want_dims[1] && t->dims[1] == want_dims[2] &&
           t->dims[2] == want_dims[3] && t->dims[3] != t->dims[1];
}

static int hwc_to_chw(octet_tensor *t, octet_error *err) {
    int64_t n = t->dims[0], h = t->dims[1], w = t->dims[2], c = t->dims[3];
    int64_t numel = octet_tensor_numel(t);
    size_t es = octet_dtype_size(t->dtype);
    if (numel < 0 || (uint64_t)numel > SIZE_MAX / es) return oct_fail(err, OCTET_ERR_NOMEM, "input is too large");
    uint8_t *dst = malloc(numel ? (size_t)numel * es : 1);
    if (!dst) return oct_fail(err, OCTET_ERR_NOMEM, "out of memory transposing the input to NCHW");
    const uint8_t *src = t->data;
    for (int64_t b = 0; b < n; b++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++)
                for (int64_t ch = 0; ch < c; ch++)
                    memcpy(dst + ((size_t)(((b * c + ch) * h + y) * w + x)) * es,
                           src + ((size_t)(((b * h + y) * w + x) * c + ch)) * es, es);
    free(t->data);
    t->data = dst;
    t->dims[1] = c, t->dims[2] = h, t->dims[3] = w;
    return 0;
}

int cli_read_input(const char *spec, octet_dtype want_dtype, int want_rank, const int64_t *want_dims,
                   octet_tensor *t, octet_error *err) {
    char path[PATH_MAX], array_buf[256];
    const char *array = NULL;
    long long index = -1;
    memset(t, 0, sizeof *t);
    int npz = split_npz_spec(spec, path, sizeof path, &array, &index, array_buf, sizeof array_buf, err);
    if (npz < 0) return -1;
    if (!npz) return oct_tensor_file_read(spec, t, err);

    int rc = index >= 0 ? oct_npz_read_sample(path, array, index, t, err) : oct_npz_read(path, array, t, err);
    if (rc) return -1;
    if (t->dtype == OCTET_UINT8 && want_dtype == OCTET_FLOAT && cast_u8_to_float(t, err)) {
        octet_tensor_release(t);
        return -1;
    }
    if (is_hwc_for_chw(t, want_rank, want_dims)) return hwc_to_chw(t, err);
    /* Fit the samples to the input's per-sample shape dims[1:], keeping their count as the batch:
       [1,128,128] -> [1,1,128,128], and a whole [702,128,128] array -> [702,1,128,128]. */
    if (want_rank < 1 || want_rank > OCTET_MAX_RANK) return 0;
    octet_tensor sample = {.rank = want_rank - 1};
    memcpy(sample.dims, want_dims + 1, sizeof(int64_t) * (size_t)(want_rank - 1));
    int64_t have_n = octet_tensor_numel(t), per = octet_tensor_numel(&sample);
    if (have_n >= 0 && per > 0 && have_n % per == 0) {
        t->rank = want_rank;
        t->dims[0] = have_n / per;
        memcpy(t->dims + 1, want_dims + 1, sizeof(int64_t) * (size_t)(want_rank - 1));
    }
    return 0;
}
