/* The calibrator: runs a model's fp32 calibration network (calib_net.h) over calibration data
   with observers on every float activation, picks per-tensor activation ranges with one of the
   methods of observer.h, and inserts QuantizeLinear/DequantizeLinear into the network the way
   ONNX Runtime's QDQ quantizer does (passes/qdq_insert.c), so that oct_onnx_write gives a
   standard QDQ model that ONNX Runtime runs and that octet's QDQ lowering turns into int8 ops. */
#ifndef OCT_CALIBRATE_H
#define OCT_CALIBRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "calib_net.h"
#include "observer.h"

/* Quantization parameters of one activation tensor. */
typedef struct {
    bool valid;       /* observed, float */
    octet_dtype type; /* OCTET_UINT8 (asymmetric) or OCTET_INT8 (symmetric, zp 0) */
    float scale;
    int32_t zp;
    double lo, hi;    /* the range the method chose */
    double min, max;  /* what was observed */
    double clip_rate; /* fraction of calibration values outside [lo, hi] */
} oct_qparam;

/* Scale and zero point of range [lo, hi] (which contains 0) for type. */
void oct_qparam_from_range(oct_qparam *q, octet_dtype type, double lo, double hi);

/* Calibration data: get(i) fills inputs[0..n_inputs) (graph input order) with batch i, as
   malloc'ed tensors that the calibrator releases. Every batch must have the same shapes. */
typedef int (*oct_calib_batch_fn)(void *user, int64_t i, octet_tensor *inputs, octet_error *err);
typedef struct {
    int64_t n_batches;
    oct_calib_batch_fn get;
    void *user;
} oct_calib_source;

typedef struct {
    oct_calib_method method;
    double percentile;          /* for OCT_CALIB_PERCENTILE, e.g. 99.99 */
    octet_dtype act_type;       /* OCTET_UINT8 or OCTET_INT8 */
    int threads;
    /* Called after each calibration batch of each pass (may be NULL). */
    void (*progress)(void *user, int64_t done, int64_t total);
    void *progress_user;
} oct_calib_options;

typedef struct {
    oct_calib_net net;  /* the fp32 network; oct_qdq_insert turns net.g into the QDQ graph */
    oct_qparam *params; /* one per value of net.g as built (n_params) */
    int n_params;
} oct_calib_result;

/* Calibrates model over src. On success r holds the network and the parameters of every float
   activation (free with oct_calib_result_free). */
int oct_calibrate(const oct_graph *model, const oct_calib_source *src, const oct_calib_options *o,
                  oct_calib_result *r, octet_error *err);
void oct_calib_result_free(oct_calib_result *r);

/* Inserts Q/DQ into an inferred fp32 graph g (a calibration network) given activation parameters
   (params[v] for value v < n_params). Weights of Conv/ConvTranspose/Gemm/MatMul become per-channel
   symmetric int8 with DequantizeLinear, biases int32 at s_x * s_w[c]. Nodes named in exclude stay
   fp32. *quantized (malloc'ed, *n_quantized entries) receives the indices of the activation values
   that were quantized and *used (malloc'ed) the parameters each got (data movement passes its
   input's on to its output): after the call, value v keeps its name and is the DequantizeLinear output;
   the 8-bit tensor is named oct_qdq_quantized_name(name). */
int oct_qdq_insert(oct_graph *g, const oct_qparam *params, int n_params, const char *const *exclude, int n_exclude,
                   int **quantized, oct_qparam **used, int *n_quantized, octet_error *err);
/* The name of the 8-bit tensor of activation `name` in a QDQ graph: "<name>_quantized". */
void oct_qdq_quantized_name(const char *name, char *out, size_t cap);

/* Per-tensor error of a QDQ model: runs the fp32 network of `fp32` and the planned (lowered) graph
   of `int8` on batches [0, n_batches) of src, and compares each named tensor (fp32 value vs the
   int8 tensor dequantized with params[k]). sqnr_db[k] receives 10 log10(signal / noise), or NaN
   when the tensor is not computed in 8 bits by the int8 plan. */
int oct_calib_sqnr(const oct_graph *fp32, const oct_graph *int8, const oct_calib_source *src, int64_t n_batches,
                   int threads, int n_tensors, const char *const *names, const oct_qparam *params, double *sqnr_db,
                   octet_error *err);

#endif
