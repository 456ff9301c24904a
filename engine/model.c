/* Loading a model: the file is read, parsed into a graph and released; the graph is all a
   model keeps. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "loader.h"
#include "model.h"

/* protobuf messages cannot exceed 2 GiB; larger models keep their weights as external data */
#define MAX_MODEL_FILE ((size_t)2 << 30)

/* mapped: bytes is the file's read-only mapping, which the model then keeps (see model.h). */
static octet_model *load_buffer(const void *bytes, size_t size, const char *base_dir, int mapped,
                                octet_error *err) {
    octet_model *m = calloc(1, sizeof *m);
    if (!m) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory loading a model");
        return NULL;
    }
    pthread_mutex_init(&m->weights_lock, NULL);
    if (!(m->graph = oct_onnx_parse_buffer(bytes, size, base_dir, mapped, mapped ? &m->sources : NULL, err))) {
        oct_model_weights_free(m);
        free(m);
        return NULL;
    }
    if (mapped) {
        const size_t n = (size_t)m->graph->n_values + 1;
        m->pins = calloc(n, sizeof *m->pins);
        m->released = calloc(n, 1);
        if (!m->pins || !m->released) {
            octet_model_free(m);
            oct_fail(err, OCTET_ERR_NOMEM, "out of memory loading a model");
            return NULL;
        }
        m->map = bytes;
        m->map_size = size;
    }
    return m;
}

octet_model *octet_model_load_memory(const void *bytes, size_t size, const char *base_dir,
                                     octet_error *err) {
    return load_buffer(bytes, size, base_dir, 0, err);
}

/* Maps the file read-only: the parser copies each tensor's raw_data out of the page cache into
   the buffer the graph keeps, the only copy of the weights, and drops the mapped pages behind
   it. Falls back to reading. */
static int map_file(const char *path, void **bytes, size_t *size, int *mapped, octet_error *err) {
    *mapped = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (uint64_t)st.st_size <= MAX_MODEL_FILE) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
            close(fd);
            *bytes = p;
            *size = (size_t)st.st_size;
            *mapped = 1;
            return 0;
        }
    }
    if (fd >= 0) close(fd);
    return oct_read_file(path, MAX_MODEL_FILE, bytes, size, err);
}

octet_model *octet_model_load(const char *path, octet_error *err) {
    if (!path) {
        oct_fail(err, OCTET_ERR_ARG, "octet_model_load: path is NULL");
        return NULL;
    }
    void *bytes;
    size_t size;
    int mapped;
    if (map_file(path, &bytes, &size, &mapped, err)) return NULL;
    /* external data files are resolved relative to the model's directory */
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 1;
    char *dir = malloc(dlen + 2);
    octet_model *m = NULL;
    if (!dir) {
        oct_fail(err, OCTET_ERR_NOMEM, "out of memory loading '%s'", path);
    } else {
        if (!slash) strcpy(dir, ".");
        else if (dlen == 0) strcpy(dir, "/");
        else {
            memcpy(dir, path, dlen);
            dir[dlen] = 0;
        }
        m = load_buffer(bytes, size, dir, mapped, err);
    }
    /* a loaded model keeps the mapping to read released weights back */
    if (mapped && !m) munmap(bytes, size);
    else if (!mapped) free(bytes);
    free(dir);
    if (!m) oct_fail_context(err, "loading '%s'", path);
    return m;
}

void octet_model_free(octet_model *model) {
    if (!model) return;
    oct_graph_free(model->graph);
    oct_model_weights_free(model);
    free(model);
}
