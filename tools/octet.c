/* The `octet` command line: dispatches to one command per file (cmd_*.c). */
#include <stdio.h>
#include <string.h>

#include "cli_util.h"

static const cli_command *const commands[] = {&cli_cmd_run, &cli_cmd_inspect, &cli_cmd_bench, &cli_cmd_validate,
                                              &cli_cmd_quantize};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static const cli_command *find_command(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

static void print_help(FILE *f) {
    fprintf(f, "usage: octet COMMAND [ARGS]...\n\nint8/fp32 inference for ONNX models.\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "  %-10s %s\n", "help", "show the help of a command");
    fprintf(f, "\noptions:\n  -h, --help     show this help\n  --version      print the version\n");
    fprintf(f, "\nRun 'octet help COMMAND' for a command's options.\n");
}

static int help_main(int argc, char **argv) {
    if (argc == 1) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    if (argc > 2) return cli_usage_error("help", "expected one COMMAND, got %d arguments", argc - 1);
    const cli_command *c = find_command(argv[1]);
    if (!c) return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
    fputs(c->usage, stdout);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (cli_is_help(name)) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("octet %s (kernels: %s)\n", octet_version(), octet_kernel_set());
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "help") == 0) return help_main(argc - 1, argv + 1);
    if (name[0] == '-') return cli_usage_error(NULL, "unknown option '%s'", name);
    const cli_command *c = find_command(name);
    if (!c) return cli_usage_error(NULL, "unknown command '%s'", name);
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(c->usage, stdout);
            return CLI_EXIT_OK;
        }
    }
    return c->main(argc - 1, argv + 1);
}
