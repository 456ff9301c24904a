/* `octet inspect`: the planned graph (after the passes) and its memory plan. */
#include <stdio.h>
#include <string.h>

#include "cli_util.h"

static int inspect_main(int argc, char **argv) {
    const char *cmd = "inspect", *model_path = NULL;
    int json = 0, batch = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if ((m = cli_flag_value(argc, argv, &i, cmd, "--batch", &v))) {
            if (m < 0 || cli_parse_int(cmd, "--batch", v, 1, 1 << 20, &batch)) return CLI_EXIT_USAGE;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        } else if (!model_path) {
            model_path = argv[i];
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!model_path) return cli_usage_error(cmd, "missing MODEL");

    octet_error err = {0};
    octet_session_options opts = {.threads = 1, .batch = batch};
    octet_model *model = octet_model_load(model_path, &err);
    octet_session *s = model ? octet_session_create(model, &opts, &err) : NULL;
    octet_plan_stats st;
    int rc = CLI_EXIT_FAIL;
    if (!s) goto done;
    if (octet_session_plan_stats(s, &st) != 0) {
        snprintf(err.msg, sizeof err.msg, "%s: the session has no memory plan", model_path);
        goto done;
    }
    /* The JSON document carries the memory plan already; text gets the stats line at the end. */
    if (octet_session_describe(s, stdout, json) != 0) {
        snprintf(err.msg, sizeof err.msg, "%s: cannot describe the plan", model_path);
        goto done;
    }
    if (!json) {
        char arena[32], weights[32], peak[32];
        printf("plan stats: %d nodes per run, arena %s, weights %s, peak %s (%zu bytes)\n", st.nodes,
               cli_bytes_str(st.arena_bytes, arena, sizeof arena),
               cli_bytes_str(st.weight_bytes, weights, sizeof weights),
               cli_bytes_str(st.peak_bytes, peak, sizeof peak), st.peak_bytes);
    }
    if (fflush(stdout) != 0) {
        snprintf(err.msg, sizeof err.msg, "cannot write to standard output");
        goto done;
    }
    rc = CLI_EXIT_OK;
done:
    if (rc != CLI_EXIT_OK) cli_runtime_error(&err);
    octet_session_free(s);
    octet_model_free(model);
    return rc;
}

const cli_command cli_cmd_inspect = {
    .name = "inspect",
    .summary = "show the planned graph: fused nodes, shapes, memory plan",
    .usage =
        "usage: octet inspect MODEL [--json] [--batch N]\n"
        "\n"
        "Loads MODEL, runs the graph passes and prints the executable plan: every node with its\n"
        "fused epilogue and shapes, then the memory plan (arena, weights, peak).\n"
        "\n"
        "  --json     print one JSON document instead of text\n"
        "  --batch N  value of a symbolic batch dimension (default 1)\n",
    .main = inspect_main,
};
