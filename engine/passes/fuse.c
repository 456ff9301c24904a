/* Placeholder until the fusion pass lands: no rewrite. */
#include "passes.h"

int oct_pass_fuse(oct_graph *g, octet_error *err) {
    (void)g;
    (void)err;
    return 0;
}
