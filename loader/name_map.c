/* Open-addressing hash map from value name to value index. Keys are the names stored in the
   graph, so the map holds only integers and survives reallocation of g->values. */
#include "name_map.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

void oct_name_map_init(oct_name_map *m) {
    memset(m, 0, sizeof *m);
}

void oct_name_map_free(oct_name_map *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

int oct_name_map_find(const oct_name_map *m, const oct_graph *g, const char *name) {
    if (!m->cap) return -1;
    size_t mask = m->cap - 1;
    for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        int s = m->slots[i];
        if (!s) return -1;
        if (strcmp(g->values[s - 1].name, name) == 0) return s - 1;
    }
}

static void insert_slot(int *slots, size_t cap, const oct_graph *g, int idx) {
    size_t mask = cap - 1;
    size_t i = hash_name(g->values[idx].name) & mask;
    while (slots[i]) i = (i + 1) & mask;
    slots[i] = idx + 1;
}

int oct_name_map_put(oct_name_map *m, const oct_graph *g, int idx) {
    if ((m->count + 1) * 2 > m->cap) { /* keep the load factor under 1/2 */
        size_t cap = m->cap ? m->cap * 2 : 256;
        int *slots = calloc(cap, sizeof(int));
        if (!slots) return -1;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i]) insert_slot(slots, cap, g, m->slots[i] - 1);
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    insert_slot(m->slots, m->cap, g, idx);
    m->count++;
    return 0;
}
