/* octet: int8/fp32 inference for ONNX models on CPUs. The one public header. */
#ifndef OCTET_H
#define OCTET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OCTET_MAX_RANK 8

typedef enum {
    OCTET_OK = 0,
    OCTET_ERR_IO,          /* a file could not be opened, read or written */
    OCTET_ERR_FORMAT,      /* the input is malformed: corrupt protobuf, bad .npy header, ... */
    OCTET_ERR_UNSUPPORTED, /* valid ONNX that octet does not implement */
    OCTET_ERR_SHAPE,       /* shapes or dtypes that do not fit together */
    OCTET_ERR_ARG,         /* a bad argument to the API */
    OCTET_ERR_NOMEM,       /* an allocation failed or a size overflowed */
    OCTET_ERR_INTERNAL
} octet_status;

/* Every call that can fail takes one of these; it may be NULL. */
typedef struct {
    octet_status code;
    char msg[512];
} octet_error;

/* Values follow ONNX TensorProto.DataType. */
typedef enum {
    OCTET_FLOAT = 1,
    OCTET_UINT8 = 2,
    OCTET_INT8 = 3,
    OCTET_INT32 = 6,
    OCTET_INT64 = 7,
    OCTET_BOOL = 9
} octet_dtype;

/* A dense row-major tensor. `data` is owned by whoever filled it; tensors that octet
   returns from octet_session_run are released with octet_tensor_release. */
typedef struct {
    octet_dtype dtype;
    int rank;
    int64_t dims[OCTET_MAX_RANK];
    void *data;
} octet_tensor;

typedef struct octet_model octet_model;
typedef struct octet_session octet_session;

typedef struct {
    int threads; /* 0: all cores (omp_get_max_threads) */
    int batch;   /* value for a symbolic first input dimension; 0 means 1 */
    /* 1: pin worker thread i of a run to the i-th CPU the calling thread may run on (the caller is
       worker 0, so the calling thread stays pinned after the run); 0: the OS places the threads. */
    int pin_threads;
} octet_session_options;

const char *octet_version(void);
/* The kernel set the dispatch picked for this CPU (and OCTET_ISA): "ref", "avx2", "avx512", "vnni",
   "neon" or "dotprod". */
const char *octet_kernel_set(void);
const char *octet_status_name(octet_status code);

size_t octet_dtype_size(octet_dtype dtype);
const char *octet_dtype_name(octet_dtype dtype);
/* Number of elements; -1 when the product overflows or a dim is negative. */
int64_t octet_tensor_numel(const octet_tensor *t);
void octet_tensor_release(octet_tensor *t);

octet_model *octet_model_load(const char *path, octet_error *err);
octet_model *octet_model_load_memory(const void *bytes, size_t size, const char *base_dir,
                                     octet_error *err);
void octet_model_free(octet_model *model);

octet_session *octet_session_create(const octet_model *model, const octet_session_options *opts,
                                    octet_error *err);
void octet_session_free(octet_session *session);

int octet_session_input_count(const octet_session *s);
int octet_session_output_count(const octet_session *s);
/* Name, dtype and planned shape of input/output i (0-based); returns 0, or -1 if i is out of range. */
int octet_session_input_info(const octet_session *s, int i, const char **name, octet_dtype *dtype,
                             int *rank, int64_t dims[OCTET_MAX_RANK]);
int octet_session_output_info(const octet_session *s, int i, const char **name, octet_dtype *dtype,
                              int *rank, int64_t dims[OCTET_MAX_RANK]);

/* Runs the graph. inputs[i] feeds the graph input named in_names[i] (NULL names: graph order).
   Each outputs[j] receives a freshly allocated tensor for out_names[j] (NULL: graph order,
   n_out must then equal the output count). A different batch than planned re-plans the session.
   Safe to call from several threads at once on the same session. Returns 0 or -1. */
int octet_session_run(octet_session *s, int n_in, const char *const *in_names,
                      const octet_tensor *inputs, int n_out, const char *const *out_names,
                      octet_tensor *outputs, octet_error *err);

/* As octet_session_run, but into the caller's buffers, for serving loops that reuse them:
   outputs[j] must already carry the dtype, rank and dims the run produces (those of an earlier
   octet_session_run with inputs of the same shapes) and data with room for them; octet writes the
   values there and allocates nothing for the outputs. A mismatch is an error naming the output. */
int octet_session_run_into(octet_session *s, int n_in, const char *const *in_names,
                           const octet_tensor *inputs, int n_out, const char *const *out_names,
                           octet_tensor *outputs, octet_error *err);

/* Memory plan of the current plan, in bytes. */
typedef struct {
    size_t arena_bytes;   /* activations + scratch, one arena per concurrent run */
    size_t weight_bytes;  /* constants after folding and packing */
    size_t peak_bytes;    /* arena + weights + run-time inputs/outputs */
    int nodes;            /* nodes executed per run */
} octet_plan_stats;
int octet_session_plan_stats(const octet_session *s, octet_plan_stats *stats);

/* Writes the planned graph (nodes, fused epilogues, shapes, memory plan) as text or JSON. */
int octet_session_describe(const octet_session *s, void *file /* FILE* */, int json);

/* ---- Adaptive precision ----------------------------------------------------------------------
   A selector holds an fp32 model and, optionally, an int8 (quantized) version of it with the
   same inputs and outputs. It answers requests with int8 while int8 is trustworthy and with fp32
   otherwise; it never fails a request that fp32 could answer. The int8 model is given up, for
   good, and the reason recorded when:
   - it is missing, cannot be loaded, its session cannot be created, or its inputs/outputs differ
     from the fp32 model's (same order, names, dtypes and planned shapes are required);
   - an int8 run fails where the fp32 run of the same request succeeds (a request that both
     models reject is the caller's error and is returned as such);
   - shadow validation finds too many disagreements: every k-th request (k = round(1/fraction),
     counting from the first) also runs in fp32 and the two first requested outputs are compared
     (see octet_selector_run); once at least min_shadow_runs shadow runs were made and
     disagreements / shadow_runs > max_disagreement, fp32 serves from then on. */
typedef struct octet_selector octet_selector;

typedef struct {
    int threads;             /* as in octet_session_options (0: all cores) */
    int batch;               /* as in octet_session_options (0: 1) */
    double shadow_fraction;  /* 0..1, share of int8 requests also run in fp32; 0: no shadowing */
    double max_disagreement; /* 0..1, largest tolerated disagreements/shadow_runs; 0: 0.05
                                (for "no disagreement at all" give a tiny value such as 1e-9) */
    int min_shadow_runs;     /* shadow runs before disagreement may switch to fp32; 0: 20 */
    int pin_threads;         /* as in octet_session_options (both models' sessions) */
} octet_selector_options;

/* Loads both models. Fails only when the fp32 model cannot be served; any problem with the int8
   model (int8_path may be NULL) makes the selector serve fp32 and say why in the stats' reason. */
octet_selector *octet_selector_create(const char *fp32_path, const char *int8_path,
                                      const octet_selector_options *opts, octet_error *err);
/* The same with models already loaded (int8 may be NULL); they must outlive the selector. */
octet_selector *octet_selector_create_from_models(const octet_model *fp32, const octet_model *int8,
                                                  const octet_selector_options *opts, octet_error *err);
void octet_selector_free(octet_selector *sel);

/* The fp32 session (for input/output names, dtypes and shapes, which the int8 one shares). */
const octet_session *octet_selector_session(const octet_selector *sel);

/* Runs one request; arguments and result as octet_session_run, safe from several threads.
   A shadow run compares outputs[0] of both models (nothing is compared when n_out is 0): a float
   output of rank >= 2 whose dim 1 has more than one entry gives one decision (argmax over dim 1,
   NaN lowest) per position of the other dims, so [N, C] logits give one top class per row; a
   rank-1 float output gives one argmax. A float output without such a class axis ([N, 1], a
   scalar) is compared value by value, a position differing when |int8 - fp32| exceeds 1% of the
   largest |fp32| value; integer and bool outputs are compared exactly. The request counts as a
   disagreement when more than 1% of its positions differ (for up to 100 rows: any row), or when
   the dtypes or shapes differ. The int8 answer is returned on a shadowed request; a failed fp32
   shadow run is not counted. */
int octet_selector_run(octet_selector *sel, int n_in, const char *const *in_names,
                       const octet_tensor *inputs, int n_out, const char *const *out_names,
                       octet_tensor *outputs, octet_error *err);

typedef struct {
    uint64_t requests;      /* calls to octet_selector_run begun */
    uint64_t int8_runs;     /* requests answered by the int8 model */
    uint64_t fp32_runs;     /* requests answered by the fp32 model (shadow runs not included) */
    uint64_t failed;        /* requests that returned an error */
    uint64_t shadow_runs;   /* fp32 runs that checked an int8 answer */
    uint64_t disagreements; /* shadow runs that disagreed */
    int using_int8;         /* 1 while int8 serves */
    char reason[256];       /* why this precision serves */
} octet_selector_stats;
/* A consistent snapshot. Once no run is in flight, requests = int8_runs + fp32_runs + failed.
   Returns 0, or -1 on NULL arguments. */
int octet_selector_stats_get(const octet_selector *sel, octet_selector_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
