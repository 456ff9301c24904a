/* A loaded model: the graph as read from the file, never modified after load. */
#ifndef OCT_MODEL_H
#define OCT_MODEL_H

#include "graph.h"

struct octet_model {
    oct_graph *graph;
};

#endif
