/* Value lookup by name while a graph is being built: oct_graph_find_value scans linearly, which
   is quadratic over a model with thousands of nodes. */
#ifndef OCT_NAME_MAP_H
#define OCT_NAME_MAP_H

#include "../engine/graph.h"

typedef struct {
    int *slots;    /* value index + 1; 0 = empty */
    size_t cap;    /* power of two */
    size_t count;
} oct_name_map;

void oct_name_map_init(oct_name_map *m);
void oct_name_map_free(oct_name_map *m);
/* Index of the value of g named `name`, or -1. */
int oct_name_map_find(const oct_name_map *m, const oct_graph *g, const char *name);
/* Records value idx of g (its name must not be present yet). Returns 0, or -1 out of memory. */
int oct_name_map_put(oct_name_map *m, const oct_graph *g, int idx);

#endif
