/* A DEFLATE decoder (RFC 1951) and CRC-32, written for untrusted .npz members.
   Every read is bounds-checked against the input, every write against the caller's buffer,
   and every Huffman code is validated before use (over-subscribed or incomplete codes are
   refused, as zlib does). Decoding uses a 10-bit lookup table for the common short codes and
   falls back to a canonical bit-by-bit walk for longer ones. */
#include <pthread.h>
#include <string.h>

#include "npz.h"

/* ---- CRC-32 ---------------------------------------------------------------------------- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][n] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int n = 0; n < 256; n++)
            crc_table[t][n] = (crc_table[t - 1][n] >> 8) ^ crc_table[0][crc_table[t - 1][n] & 0xff];
}

uint32_t oct_crc32(uint32_t crc, const void *data, size_t n) {
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    crc = ~crc;
    /* slice-by-8: eight table lookups per 8 bytes instead of a dependency chain per byte */
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- bit input -------------------------------------------------------------------------- */

#define MAX_BITS 15
#define FAST_BITS 10
#define MAX_LITLEN 288
#define MAX_DIST 32

typedef struct {
    const uint8_t *in;
    size_t size, pos;   /* next byte to load into bitbuf */
    uint64_t bitbuf;    /* LSB first, as DEFLATE packs bits */
    int bitcount;
    uint8_t *out;
    size_t cap, len;
    octet_error *err;
} inflate_state;

static void refill(inflate_state *s) {
    while (s->bitcount <= 56 && s->pos < s->size) {
        s->bitbuf |= (uint64_t)s->in[s->pos++] << s->bitcount;
        s->bitcount += 8;
    }
}

static int truncated(inflate_state *s) {
    return oct_fail(s->err, OCTET_ERR_FORMAT, "deflate stream is truncated");
}

/* Reads n (<= 32) bits into *v. */
static int bits(inflate_state *s, int n, uint32_t *v) {
    *v = 0;
    if (s->bitcount < n) refill(s);
    if (s->bitcount < n) return truncated(s);
    *v = (uint32_t)(s->bitbuf & ((1ull << n) - 1));
    s->bitbuf >>= n;
    s->bitcount -= n;
    return 0;
}

/* ---- Huffman codes ---------------------------------------------------------------------- */

typedef struct {
    uint16_t count[MAX_BITS + 1];   /* codes of each length */
    uint16_t symbol[MAX_LITLEN];    /* symbols in canonical order */
    uint16_t fast[1 << FAST_BITS];  /* (symbol << 4) | length, 0 = use the slow path */
} huffman;

/* How strictly a code must fill its code space. */
typedef enum {
    CODE_COMPLETE, /* the code-length code */
    CODE_ZLIB      /* literal/length and distance: incomplete only with a single 1-bit code
                      (or none at all for distances), as zlib accepts */
} code_rule;

/* Builds the decoding tables from code lengths; fails on over-subscribed codes and on
   incomplete ones the rule does not allow. */
static int huffman_build(huffman *h, const uint8_t *lengths, int n, code_rule rule,
                         const char *what, octet_error *err) {
    memset(h->count, 0, sizeof h->count);
    int max = 0;
    for (int i = 0; i < n; i++) {
        h->count[lengths[i]]++;
        if (lengths[i] > max) max = lengths[i];
    }
    int left = 1;
    for (int len = 1; len <= MAX_BITS; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0) return oct_fail(err, OCTET_ERR_FORMAT, "deflate: over-subscribed %s code", what);
    }
    if (left > 0 && (rule == CODE_COMPLETE || max > 1))
        return oct_fail(err, OCTET_ERR_FORMAT, "deflate: incomplete %s code", what);
    uint16_t offs[MAX_BITS + 2];
    offs[1] = 0;
    for (int len = 1; len < MAX_BITS; len++) offs[len + 1] = offs[len] + h->count[len];
    for (int i = 0; i < n; i++)
        if (lengths[i]) h->symbol[offs[lengths[i]]++] = (uint16_t)i;

    /* The fast table: canonical codes are MSB-first, the stream is LSB-first, so each code is
       bit-reversed and replicated over the unused high bits. */
    memset(h->fast, 0, sizeof h->fast);
    uint32_t code = 0;
    int index = 0;
    for (int len = 1; len <= MAX_BITS; len++) {
        for (int k = 0; k < h->count[len]; k++, index++, code++) {
            if (len > FAST_BITS) continue;
            uint32_t rev = 0;
            for (int b = 0; b < len; b++) rev |= ((code >> b) & 1u) << (len - 1 - b);
            for (uint32_t fill = rev; fill < (1u << FAST_BITS); fill += 1u << len)
                h->fast[fill] = (uint16_t)(h->symbol[index] << 4 | len);
        }
        code <<= 1;
    }
    return 0;
}

/* Decodes one symbol. */
static int decode(inflate_state *s, const huffman *h, int *sym) {
    *sym = 0;
    if (s->bitcount < MAX_BITS) refill(s);
    uint16_t e = h->fast[s->bitbuf & ((1u << FAST_BITS) - 1)];
    if (e && (e & 15) <= s->bitcount) {
        s->bitbuf >>= e & 15;
        s->bitcount -= e & 15;
        *sym = e >> 4;
        return 0;
    }
    /* canonical walk: codes of length len occupy [first, first + count[len]) */
    int code = 0, first = 0, index = 0;
    for (int len = 1; len <= MAX_BITS; len++) {
        if (s->bitcount < len) return truncated(s);
        code |= (int)((s->bitbuf >> (len - 1)) & 1);
        int count = h->count[len];
        if (code - first < count) {
            s->bitbuf >>= len;
            s->bitcount -= len;
            *sym = h->symbol[index + code - first];
            return 0;
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return oct_fail(s->err, OCTET_ERR_FORMAT, "deflate: invalid Huffman code");
}

/* ---- blocks ----------------------------------------------------------------------------- */

static const uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                       33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                       1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static int overflow(inflate_state *s) {
    return oct_fail(s->err, OCTET_ERR_FORMAT,
                    "deflate: data decodes to more than the declared %zu bytes", s->cap);
}

static int block_stored(inflate_state *s) {
    /* Drop the bits up to the byte boundary and give back the whole bytes still buffered. */
    s->bitcount -= s->bitcount & 7;
    s->pos -= (size_t)s->bitcount / 8;
    s->bitbuf = 0;
    s->bitcount = 0;
    if (s->size - s->pos < 4) return truncated(s);
    const uint8_t *p = s->in + s->pos;
    unsigned len = p[0] | p[1] << 8, nlen = p[2] | p[3] << 8;
    if (len != (~nlen & 0xffffu))
        return oct_fail(s->err, OCTET_ERR_FORMAT, "deflate: stored block length check failed");
    s->pos += 4;
    if (s->size - s->pos < len) return truncated(s);
    if (s->cap - s->len < len) return overflow(s);
    memcpy(s->out + s->len, s->in + s->pos, len);
    s->pos += len;
    s->len += len;
    return 0;
}

static int block_codes(inflate_state *s, const huffman *lit, const huffman *dist) {
    for (;;) {
        int sym;
        if (decode(s, lit, &sym)) return -1;
        if (sym < 256) {
            if (s->len == s->cap) return overflow(s);
            s->out[s->len++] = (uint8_t)sym;
            continue;
        }
        if (sym == 256) return 0;
        sym -= 257;
        if (sym >= 29) return oct_fail(s->err, OCTET_ERR_FORMAT, "deflate: invalid length symbol");
        uint32_t extra;
        if (bits(s, len_extra[sym], &extra)) return -1;
        size_t len = len_base[sym] + extra;
        int dsym;
        if (decode(s, dist, &dsym)) return -1;
        if (dsym >= 30) return oct_fail(s->err, OCTET_ERR_FORMAT, "deflate: invalid distance symbol");
        if (bits(s, dist_extra[dsym], &extra)) return -1;
        size_t d = dist_base[dsym] + extra;
        if (d > s->len)
            return oct_fail(s->err, OCTET_ERR_FORMAT,
                            "deflate: back-reference %zu bytes before the start of the output", d);
        if (s->cap - s->len < len) return overflow(s);
        /* byte by byte: source and destination overlap when d < len (run-length copies) */
        uint8_t *dst = s->out + s->len;
        const uint8_t *src = dst - d;
        for (size_t i = 0; i < len; i++) dst[i] = src[i];
        s->len += len;
    }
}

static int block_fixed(inflate_state *s) {
    /* Rebuilt per block (a few thousand stores) rather than cached in shared mutable state. */
    huffman lit, dist;
    uint8_t lengths[MAX_LITLEN];
    int i = 0;
    for (; i < 144; i++) lengths[i] = 8;
    for (; i < 256; i++) lengths[i] = 9;
    for (; i < 280; i++) lengths[i] = 7;
    for (; i < 288; i++) lengths[i] = 8;
    if (huffman_build(&lit, lengths, 288, CODE_COMPLETE, "fixed literal/length", s->err)) return -1;
    /* 32 codes, so that the two unused ones decode and are refused as invalid symbols */
    for (i = 0; i < 32; i++) lengths[i] = 5;
    if (huffman_build(&dist, lengths, 32, CODE_COMPLETE, "fixed distance", s->err)) return -1;
    return block_codes(s, &lit, &dist);
}

static int block_dynamic(inflate_state *s) {
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    uint32_t hlit, hdist, hclen;
    if (bits(s, 5, &hlit) || bits(s, 5, &hdist) || bits(s, 4, &hclen)) return -1;
    int nlen = (int)hlit + 257, ndist = (int)hdist + 1, ncode = (int)hclen + 4;
    if (nlen > 286 || ndist > 30)
        return oct_fail(s->err, OCTET_ERR_FORMAT, "deflate: too many length or distance codes");

    uint8_t lengths[MAX_LITLEN + MAX_DIST];
    memset(lengths, 0, 19);
    for (int i = 0; i < ncode; i++) {
        uint32_t v;
        if (bits(s, 3, &v)) return -1;
        lengths[order[i]] = (uint8_t)v;
    }
    huffman lencode, lit, dist;
    if (huffman_build(&lencode, lengths, 19, CODE_COMPLETE, "code-length", s->err)) return -1;

    int i = 0;
    while (i < nlen + ndist) {
        int sym;
        if (decode(s, &lencode, &sym)) return -1;
        if (sym < 16) {
            lengths[i++] = (uint8_t)sym;
            continue;
        }
        uint8_t value = 0;
        uint32_t rep;
        if (sym == 16) {
            if (i == 0)
                return oct_fail(s->err, OCTET_ERR_FORMAT, "deflate: repeat with no previous length");
            value = lengths[i - 1];
            if (bits(s, 2, &rep)) return -1;
            rep += 3;
        } else if (sym == 17) {
            if (bits(s, 3, &rep)) return -1;
            rep += 3;
        } else {
            if (bits(s, 7, &rep)) return -1;
            rep += 11;
        }
        if ((uint32_t)(nlen + ndist - i) < rep)
            return oct_fail(s->err, OCTET_ERR_FORMAT, "deflate: code lengths run past the table");
        while (rep--) lengths[i++] = value;
    }
    if (lengths[256] == 0)
        return oct_fail(s->err, OCTET_ERR_FORMAT, "deflate: no end-of-block code");
    if (huffman_build(&lit, lengths, nlen, CODE_ZLIB, "literal/length", s->err)) return -1;
    if (huffman_build(&dist, lengths + nlen, ndist, CODE_ZLIB, "distance", s->err)) return -1;
    return block_codes(s, &lit, &dist);
}

int oct_inflate(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap,
                size_t *out_len, size_t *in_used, octet_error *err) {
    inflate_state s = {.in = in, .size = in_size, .out = out, .cap = out_cap, .err = err};
    uint32_t last;
    do {
        uint32_t type;
        if (bits(&s, 1, &last) || bits(&s, 2, &type)) return -1;
        int rc;
        switch (type) {
        case 0: rc = block_stored(&s); break;
        case 1: rc = block_fixed(&s); break;
        case 2: rc = block_dynamic(&s); break;
        default: return oct_fail(err, OCTET_ERR_FORMAT, "deflate: invalid block type 3");
        }
        if (rc) return -1;
    } while (!last);
    if (out_len) *out_len = s.len;
    /* bytes consumed: loaded bytes minus the whole bytes still unread in the bit buffer */
    if (in_used) *in_used = s.pos - (size_t)s.bitcount / 8;
    return 0;
}
