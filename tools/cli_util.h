/* Shared pieces of the `octet` command line: the command table entry, error reporting with
   the CLI's exit codes, flag parsing helpers, input files and .npy output. */
#ifndef OCT_CLI_UTIL_H
#define OCT_CLI_UTIL_H

#include <stdbool.h>

#include "octet.h"

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,  /* the command ran and failed: bad model, bad input, I/O */
    CLI_EXIT_USAGE = 2  /* the command line itself is wrong */
};

typedef struct {
    const char *name;
    const char *summary;  /* one line for `octet --help` */
    const char *usage;    /* full help for `octet help NAME` */
    int (*main)(int argc, char **argv); /* argv[0] is the command name */
} cli_command;

extern const cli_command cli_cmd_run;
extern const cli_command cli_cmd_inspect;
extern const cli_command cli_cmd_bench;
extern const cli_command cli_cmd_validate;
extern const cli_command cli_cmd_quantize;

/* "octet: <cmd>: <message> (see 'octet help <cmd>')" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "octet: error: <message>" on stderr; returns CLI_EXIT_FAIL. */
int cli_runtime_error(const octet_error *err);

/* True if argv[*i] is the flag `name`; sets *value to its argument ("--x V" or "--x=V", and
   "-iV" for one-letter flags), advancing *i past it. Returns -1 (after a usage error) when the
   argument is missing, 0 when argv[*i] is another flag, 1 on a match. */
int cli_flag_value(int argc, char **argv, int *i, const char *cmd, const char *name, const char **value);
/* Parses a decimal int in [min, max] for flag `name`; returns 0 or -1 after a usage error. */
int cli_parse_int(const char *cmd, const char *name, const char *text, int min, int max, int *out);
/* True when the argument asks for help. */
bool cli_is_help(const char *arg);

/* Reads an input tensor: FILE.npy, a TensorProto FILE.pb, or FILE.npz:ARRAY[@INDEX].
   For .npz members the data are made to fit the model input (want_dtype, want_rank/dims):
   uint8 becomes float32 when the model wants float32, and data whose element count is a
   multiple of one sample of the input (dims[1:]) are reshaped to [count, dims[1:]...]
   (an MRI slice [1,128,128] -> [1,1,128,128]). */
int cli_read_input(const char *spec, octet_dtype want_dtype, int want_rank, const int64_t *want_dims,
                   octet_tensor *t, octet_error *err);

/* Output names as file names: characters outside [A-Za-z0-9._-] become '_'. out holds cap bytes. */
void cli_file_name(const char *name, char *out, size_t cap);
/* mkdir -p. */
int cli_make_dir(const char *dir, octet_error *err);

/* "[1, 3, 224, 224]" into buf. */
const char *cli_shape_str(int rank, const int64_t *dims, char *buf, size_t cap);

/* 640 B, 12.3 KiB, 4.56 MiB, 1.20 GiB */
const char *cli_bytes_str(size_t bytes, char *buf, size_t cap);

#endif
