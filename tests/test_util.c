#include "test_util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *test_shared_dir(void) {
    const char *s = getenv("OCTET_SHARED");
    return s && *s ? s : "../shared";
}

const char *test_source_root(void) {
    const char *s = getenv("OCTET_SOURCE_ROOT");
    return s && *s ? s : ".";
}

char *test_write_temp(const void *bytes, size_t n, const char *suffix) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    size_t len = strlen(dir) + strlen(suffix) + 32;
    char *path = malloc(len);
    if (!path) return NULL;
    snprintf(path, len, "%s/octet-test-XXXXXX%s", dir, suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0) { free(path); return NULL; }
    if (n && write(fd, bytes, n) != (ssize_t)n) { close(fd); free(path); return NULL; }
    close(fd);
    return path;
}
