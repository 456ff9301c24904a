/* Whole-file reads with a size cap, and copies out of a mapped file. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bigmem.h"
#include "loader.h"

int oct_read_file(const char *path, size_t max_bytes, void **data, size_t *size, octet_error *err) {
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return oct_fail(err, OCTET_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return oct_fail(err, OCTET_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return oct_fail(err, OCTET_ERR_IO, "'%s' is a directory, not a file", path);
    }
    /* Regular files are read in one allocation; pipes grow the buffer as they go. */
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size : 1 << 16;
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max_bytes) {
        close(fd);
        return oct_fail(err, OCTET_ERR_IO, "'%s' is %lld bytes, more than the %zu byte limit", path,
                        (long long)st.st_size, max_bytes);
    }
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return oct_fail(err, OCTET_ERR_NOMEM, "out of memory reading '%s' (%zu bytes)", path, cap);
    }
    size_t n = 0;
    for (;;) {
        if (n == cap) {
            if (S_ISREG(st.st_mode) && n > 0) break; /* a regular file read to its stat size */
            if (cap >= max_bytes) {
                free(buf);
                close(fd);
                return oct_fail(err, OCTET_ERR_IO, "'%s' is more than the %zu byte limit", path,
                                max_bytes);
            }
            size_t ncap = cap > max_bytes / 2 ? max_bytes : cap * 2;
            if (ncap < 4096) ncap = 4096;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return oct_fail(err, OCTET_ERR_NOMEM, "out of memory reading '%s'", path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t want = cap - n > ((size_t)1 << 30) ? (size_t)1 << 30 : cap - n;
        ssize_t r = read(fd, buf + n, want);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return oct_fail(err, OCTET_ERR_IO, "error reading '%s': %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *data = buf;
    *size = n;
    return 0;
}

void *oct_pb_slice_copy(const void *base, const oct_pb_slice *s, int release_pages) {
    const char *src = (const char *)base + s->offset;
    /* large weights in huge pages: their 4 KB page faults were about a tenth of ResNet-50's load
       (each one a hypervisor exit on VMs) */
    void *copy = oct_big_alloc(s->len ? s->len : 1);
    if (!copy) return NULL;
    memcpy(copy, src, s->len);
    if (release_pages) {
        const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        const uintptr_t lo = ((uintptr_t)src + page - 1) / page * page, hi = (uintptr_t)(src + s->len) / page * page;
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    return copy;
}
