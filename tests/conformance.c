/* ONNX node conformance runner.

   conformance [-v] [-f SUBSTR] [--xfail FILE] [--no-fork] DIR...

   Each test_... or supp_... directory with a model.onnx is loaded, run on the input_J.pb files of
   every test_data_set_N (fed in graph-input order) and compared with output_J.pb as the ONNX
   runner does: dtype and shape equal, floats |out-ref| <= 1e-7 + 1e-3*|ref| (NaN equals NaN),
   integers and bools exact. Tests run in a forked child each, so a crash, a hang or a sanitizer
   report fails that test only. The parent never touches OpenMP, which is not fork-safe. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/octet.h"
#include "loader/loader.h"
#include "test_util.h"

#define TEST_TIMEOUT_S 300
#define REASON_MAX 1024

typedef struct {
    char **items;
    int n, cap;
} str_list;

static void list_add(str_list *l, const char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        char **ni = realloc(l->items, (size_t)l->cap * sizeof *ni);
        if (!ni) { perror("conformance"); exit(2); }
        l->items = ni;
    }
    char *d = strdup(s);
    if (!d) { perror("conformance"); exit(2); }
    l->items[l->n++] = d;
}

static void list_free(str_list *l) {
    for (int i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_has(const str_list *l, const char *s) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->items[i], s)) return 1;
    return 0;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Names in dir starting with `prefix`, sorted. */
static void list_dir(const char *dir, const char *prefix, str_list *out) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) list_add(out, e->d_name);
    closedir(d);
    if (out->n) qsort(out->items, (size_t)out->n, sizeof *out->items, cmp_str);
}

/* The xfail list: one test name per line, '#' starts a comment. */
static int read_xfail(const char *path, str_list *out) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
        if (n) list_add(out, s);
    }
    fclose(f);
    return 0;
}

static int fail_with(char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_with(char *reason, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, REASON_MAX, fmt, ap);
    va_end(ap);
    return -1;
}

static void shape_str(const octet_tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static double elem(const octet_tensor *t, int64_t i) {
    switch (t->dtype) {
    case OCTET_FLOAT: return ((const float *)t->data)[i];
    case OCTET_UINT8: case OCTET_BOOL: return ((const uint8_t *)t->data)[i];
    case OCTET_INT8: return ((const int8_t *)t->data)[i];
    case OCTET_INT32: return ((const int32_t *)t->data)[i];
    case OCTET_INT64: return (double)((const int64_t *)t->data)[i];
    }
    return 0;
}

static int compare(const octet_tensor *out, const octet_tensor *ref, int j, char *reason) {
    if (out->dtype != ref->dtype)
        return fail_with(reason, "output %d has dtype %s, expected %s", j, octet_dtype_name(out->dtype),
                         octet_dtype_name(ref->dtype));
    int same = out->rank == ref->rank;
    for (int i = 0; same && i < ref->rank; i++) same = out->dims[i] == ref->dims[i];
    if (!same) {
        char a[128], b[128];
        shape_str(out, a, sizeof a);
        shape_str(ref, b, sizeof b);
        return fail_with(reason, "output %d has shape %s, expected %s", j, a, b);
    }
    int64_t n = octet_tensor_numel(ref), bad = 0, first = -1;
    if (n > 0 && !out->data) return fail_with(reason, "output %d has no data", j);
    for (int64_t i = 0; i < n; i++) {
        int ok;
        if (ref->dtype == OCTET_FLOAT) {
            float o = ((const float *)out->data)[i], r = ((const float *)ref->data)[i];
            ok = o == r || (isnan(o) && isnan(r)) || fabsf(o - r) <= 1e-7f + 1e-3f * fabsf(r);
        } else if (ref->dtype == OCTET_INT64) {
            ok = ((const int64_t *)out->data)[i] == ((const int64_t *)ref->data)[i];
        } else {
            ok = elem(out, i) == elem(ref, i);
        }
        if (!ok && !bad++) first = i;
    }
    if (bad)
        return fail_with(reason, "output %d: %lld of %lld values differ, first at %lld: got %.9g, expected %.9g",
                         j, (long long)bad, (long long)n, (long long)first, elem(out, first),
                         elem(ref, first));
    return 0;
}

static void free_tensors(octet_tensor *t, int n) {
    for (int i = 0; t && i < n; i++) free(t[i].data);
    free(t);
}

/* Runs one data set directory against the session. */
static int run_data_set(octet_session *s, const char *set_dir, char *reason) {
    char path[4096];
    int n_in = 0, n_out = 0;
    for (;; n_in++) {
        snprintf(path, sizeof path, "%s/input_%d.pb", set_dir, n_in);
        if (!file_exists(path)) break;
    }
    for (;; n_out++) {
        snprintf(path, sizeof path, "%s/output_%d.pb", set_dir, n_out);
        if (!file_exists(path)) break;
    }
    if (n_in != octet_session_input_count(s))
        return fail_with(reason, "the model has %d inputs, the data set %d", octet_session_input_count(s), n_in);
    if (n_out != octet_session_output_count(s))
        return fail_with(reason, "the model has %d outputs, the data set %d",
                         octet_session_output_count(s), n_out);
    octet_tensor *in = calloc((size_t)n_in + 1, sizeof *in), *ref = calloc((size_t)n_out + 1, sizeof *ref);
    octet_tensor *out = calloc((size_t)n_out + 1, sizeof *out);
    int rc = -1;
    octet_error err = {0};
    if (!in || !ref || !out) {
        fail_with(reason, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_in; i++) {
        snprintf(path, sizeof path, "%s/input_%d.pb", set_dir, i);
        if (oct_tensor_pb_read(path, &in[i], NULL, &err)) {
            fail_with(reason, "reading input: %s", err.msg);
            goto done;
        }
    }
    for (int i = 0; i < n_out; i++) {
        snprintf(path, sizeof path, "%s/output_%d.pb", set_dir, i);
        if (oct_tensor_pb_read(path, &ref[i], NULL, &err)) {
            fail_with(reason, "reading reference output: %s", err.msg);
            goto done;
        }
    }
    if (octet_session_run(s, n_in, NULL, in, n_out, NULL, out, &err)) {
        fail_with(reason, "run: %s: %s", octet_status_name(err.code), err.msg);
        goto done;
    }
    rc = 0;
    for (int i = 0; i < n_out && rc == 0; i++) rc = compare(&out[i], &ref[i], i, reason);
done:
    free_tensors(in, n_in);
    free_tensors(ref, n_out);
    free_tensors(out, n_out);
    return rc;
}

/* Loads and runs one test directory; 0 on pass, -1 with reason set. */
static int run_test(const char *dir, char *reason) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    octet_error err = {0};
    octet_model *m = octet_model_load(path, &err);
    if (!m) return fail_with(reason, "load: %s: %s", octet_status_name(err.code), err.msg);
    octet_session_options opts = {0};
    octet_session *s = octet_session_create(m, &opts, &err);
    if (!s) {
        octet_model_free(m);
        return fail_with(reason, "session: %s: %s", octet_status_name(err.code), err.msg);
    }
    str_list sets = {0};
    list_dir(dir, "test_data_set_", &sets);
    int rc = sets.n ? 0 : fail_with(reason, "no test_data_set_* directory");
    for (int i = 0; i < sets.n && rc == 0; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, sets.items[i]);
        rc = run_data_set(s, path, reason);
        if (rc && sets.n > 1) {
            char tmp[REASON_MAX];
            snprintf(tmp, sizeof tmp, "%s: %s", sets.items[i], reason);
            memcpy(reason, tmp, REASON_MAX);
        }
    }
    list_free(&sets);
    octet_session_free(s);
    octet_model_free(m);
    return rc;
}

/* Runs run_test in a child; the verdict comes back through a pipe. */
static int run_isolated(const char *dir, char *reason) {
    int fds[2];
    if (pipe(fds)) return fail_with(reason, "pipe failed");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return fail_with(reason, "fork failed");
    }
    if (pid == 0) {
        close(fds[0]);
        alarm(TEST_TIMEOUT_S);
        char r[REASON_MAX] = "";
        int rc = run_test(dir, r);
        char verdict = rc ? 'F' : 'P';
        ssize_t w = write(fds[1], &verdict, 1);
        if (rc) w = write(fds[1], r, strlen(r));
        (void)w;
        close(fds[1]);
        exit(0); /* a normal exit, so that LeakSanitizer checks the child */
    }
    close(fds[1]);
    char buf[REASON_MAX + 1];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], buf + n, REASON_MAX - n)) > 0 && (n += (size_t)r) < REASON_MAX) {}
    close(fds[0]);
    buf[n] = 0;
    int status;
    while (waitpid(pid, &status, 0) < 0) {}
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        return fail_with(reason, sig == SIGALRM ? "timed out after %d s" : "crashed (signal %d: %s)",
                         sig == SIGALRM ? TEST_TIMEOUT_S : sig, strsignal(sig));
    }
    if (n == 0) return fail_with(reason, "exited with status %d without a verdict", WEXITSTATUS(status));
    if (buf[0] == 'F') return fail_with(reason, "%s", buf + 1);
    if (WEXITSTATUS(status))
        return fail_with(reason, "passed, but exited with status %d (sanitizer report above?)",
                         WEXITSTATUS(status));
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: conformance [-v] [-f SUBSTR] [--xfail FILE] [--no-fork] DIR...\n");
    return 2;
}

int main(int argc, char **argv) {
    int verbose = 0, isolate = 1;
    const char *filter = NULL, *xfail_path = NULL;
    str_list roots = {0}, xfail = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) verbose = 1;
        else if (!strcmp(argv[i], "--no-fork")) isolate = 0;
        else if (!strcmp(argv[i], "-f") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "--xfail") && i + 1 < argc) xfail_path = argv[++i];
        else if (argv[i][0] == '-') return usage();
        else list_add(&roots, argv[i]);
    }
    if (!roots.n) return usage();
    char default_xfail[4096];
    if (!xfail_path) {
        const char *root = getenv("OCTET_SOURCE_ROOT");
#ifdef OCTET_XFAIL_DEFAULT
        if (!root || !*root) xfail_path = OCTET_XFAIL_DEFAULT;
#endif
        if (root && *root) {
            snprintf(default_xfail, sizeof default_xfail, "%s/tests/conformance_xfail.txt", root);
            xfail_path = default_xfail;
        }
    }
    if (xfail_path && read_xfail(xfail_path, &xfail)) {
        fprintf(stderr, "conformance: cannot read the xfail list '%s'\n", xfail_path);
        return 2;
    }
    int passed = 0, failed = 0, xfailed = 0, xpassed = 0, seen = 0;
    for (int r = 0; r < roots.n; r++) {
        str_list tests = {0};
        list_dir(roots.items[r], "", &tests);
        for (int t = 0; t < tests.n; t++) {
            const char *name = tests.items[t];
            if (strncmp(name, "test_", 5) && strncmp(name, "supp_", 5)) continue;
            if (filter && !strstr(name, filter)) continue;
            char dir[4096], model[4200];
            snprintf(dir, sizeof dir, "%s/%s", roots.items[r], name);
            snprintf(model, sizeof model, "%s/model.onnx", dir);
            if (!file_exists(model)) continue;
            seen++;
            char reason[REASON_MAX] = "";
            int rc = isolate ? run_isolated(dir, reason) : run_test(dir, reason);
            int expected_fail = list_has(&xfail, name);
            if (rc == 0 && expected_fail) {
                printf("XPASS %s (remove it from the xfail list)\n", name);
                xpassed++;
            } else if (rc == 0) {
                if (verbose) printf("PASS %s\n", name);
                passed++;
            } else if (expected_fail) {
                if (verbose) printf("XFAIL %s: %s\n", name, reason);
                xfailed++;
            } else {
                printf("FAIL %s: %s\n", name, reason);
                failed++;
            }
            fflush(stdout);
        }
        list_free(&tests);
    }
    if (!seen) fprintf(stderr, "conformance: no test directories found\n");
    printf("conformance: %d passed, %d failed, %d xfail", passed + xpassed, failed, xfailed);
    if (xpassed) printf(", %d xpass", xpassed);
    printf("\n");
    list_free(&roots);
    list_free(&xfail);
    return failed || xpassed || !seen ? 1 : 0;
}
