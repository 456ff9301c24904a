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
} octet_session_options;

const char *octet_version(void);
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

#ifdef __cplusplus
}
#endif
#endif
