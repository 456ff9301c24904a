#!/bin/sh
# End-to-end test of the `octet` command line: help and usage errors, one-line runtime errors
# for bad models and inputs, and `run -o` writing .npy files.
# usage: cli_test.sh OCTET_BINARY SHARED_DIR SOURCE_ROOT
# OCTET_WRAPPER (optional) prefixes every run, e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu"
# for a cross build.
set -u
octet_bin=$1
shared=$2
source_root=$3
nodes=$shared/onnx-node-tests
tmp=$(mktemp -d "${TMPDIR:-/tmp}/octet-cli-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0
checks=0

octet() {
    # shellcheck disable=SC2086 # the wrapper is a command line
    ${OCTET_WRAPPER:-} "$octet_bin" "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
}

fail() {
    echo "FAIL: $*"
    echo "  stdout: $(head -c 400 "$tmp/out")"
    echo "  stderr: $(head -c 400 "$tmp/err")"
    failures=$((failures + 1))
}

# expect STATUS DESCRIPTION: the last octet call exited with STATUS
expect() {
    checks=$((checks + 1))
    [ "$status" -eq "$1" ] || fail "$2: exit status $status, expected $1"
}

# expect_error STATUS TEXT DESCRIPTION: exit STATUS, stderr one line holding TEXT
expect_error() {
    checks=$((checks + 1))
    if [ "$status" -ne "$1" ]; then
        fail "$3: exit status $status, expected $1"
    elif [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
        fail "$3: stderr is not one line"
    elif ! grep -qF -- "$2" "$tmp/err"; then
        fail "$3: stderr does not mention '$2'"
    fi
}

# expect_out TEXT DESCRIPTION: stdout holds TEXT
expect_out() {
    checks=$((checks + 1))
    grep -qF -- "$1" "$tmp/out" || fail "$2: stdout lacks '$1'"
}

relu=$nodes/test_relu
gemm=$nodes/test_gemm_default_no_bias

# ---- help, version, usage errors (exit 2) ----
octet --help;            expect 0 "--help"; expect_out "usage: octet COMMAND" "--help"
octet help run;          expect 0 "help run"; expect_out "usage: octet run MODEL" "help run"
octet run --help;        expect 0 "run --help"; expect_out "usage: octet run MODEL" "run --help"
octet inspect -h;        expect 0 "inspect -h"; expect_out "usage: octet inspect MODEL" "inspect -h"
octet --version;         expect 0 "--version"; expect_out "octet 0." "--version"
octet;                   expect 2 "no command"
octet frobnicate;        expect_error 2 "unknown command 'frobnicate'" "unknown command"
octet --frobnicate;      expect_error 2 "unknown option '--frobnicate'" "unknown global option"
octet help frobnicate;   expect_error 2 "unknown command 'frobnicate'" "help of an unknown command"
octet run "$relu/model.onnx" --bogus; expect_error 2 "unknown option '--bogus'" "unknown run option"
octet run;               expect_error 2 "missing MODEL" "run without a model"
octet run "$relu/model.onnx" --threads many; expect_error 2 "--threads" "non-numeric --threads"
octet run "$relu/model.onnx" -i;             expect_error 2 "'-i' needs a value" "-i without a value"
octet inspect a.onnx b.onnx;                 expect_error 2 "unexpected argument 'b.onnx'" "two models"

# ---- runtime failures (exit 1, "octet: error: ...") ----
octet run "$tmp/missing.onnx" -i "$relu/test_data_set_0/input_0.pb"
expect_error 1 "missing.onnx" "missing model file"
expect_error 1 "octet: error: " "missing model file prefix"

head -c 3000 /dev/urandom >"$tmp/random.onnx"
octet run "$tmp/random.onnx" -i "$relu/test_data_set_0/input_0.pb"
expect_error 1 "octet: error: " "random-bytes model"

size=$(wc -c <"$relu/model.onnx")
head -c $((size / 2)) "$relu/model.onnx" >"$tmp/truncated.onnx"
octet run "$tmp/truncated.onnx" -i "$relu/test_data_set_0/input_0.pb"
expect_error 1 "octet: error: " "truncated model"
octet inspect "$tmp/truncated.onnx"
expect_error 1 "octet: error: " "inspect of a truncated model"

# test_gemm's a is [2, 10]; relu wants [3, 4, 5]
octet run "$relu/model.onnx" -i "$gemm/test_data_set_0/input_0.pb"
expect_error 1 "input 'x'" "wrong input shape"

octet run "$relu/model.onnx" -i "$tmp/nope.npy"
expect_error 1 "nope.npy" "missing input file"
octet run "$relu/model.onnx"
expect_error 1 "the model has 1 input" "no input given"
octet run "$gemm/model.onnx" -i "$gemm/test_data_set_0/input_0.pb"
expect_error 1 "-i NAME=FILE" "too few inputs"
octet run "$gemm/model.onnx" -i "a=$gemm/test_data_set_0/input_0.pb" -i "a=$gemm/test_data_set_0/input_1.pb"
expect_error 1 "given twice" "an input given twice"

mri=$shared/data/brain_tumor_mri_4c/brain_tumor_mri_4c_128_val.npz
octet run "$relu/model.onnx" -i "$mri:nothere@0"
expect_error 1 "no array 'nothere'" "missing .npz array"
octet run "$relu/model.onnx" -i "$mri:x@100000"
expect_error 1 "index 100000 is out of range" ".npz index out of range"
head -c 5000 "$mri" >"$tmp/cut.npz"
octet run "$relu/model.onnx" -i "$tmp/cut.npz:x@0"
expect_error 1 "not a zip archive" "truncated .npz"

# ---- running ----
octet run "$relu/model.onnx" -i "$relu/test_data_set_0/input_0.pb"
expect 0 "run relu"; expect_out "y: float32 [3, 4, 5]" "run relu prints the output"

octet run "$gemm/model.onnx" -i "b=$gemm/test_data_set_0/input_1.pb" -i "a=$gemm/test_data_set_0/input_0.pb"
expect 0 "run gemm with named inputs"
expect_out "y: float32 [2, 3]" "gemm output"
expect_out "row 1, top 3 (softmax)" "gemm top classes"

octet run "$relu/model.onnx" --threads 2 -i "$relu/test_data_set_0/input_0.pb" -o "$tmp/outdir/nested"
expect 0 "run -o"
checks=$((checks + 1))
if [ ! -f "$tmp/outdir/nested/y.npy" ]; then
    fail "run -o did not write y.npy"
elif [ "$(head -c 6 "$tmp/outdir/nested/y.npy" | od -An -c | tr -d ' ')" != "223NUMPY" ]; then
    fail "y.npy does not start with the .npy magic"
elif [ $(($(wc -c <"$tmp/outdir/nested/y.npy") % 64)) -ne $((3 * 4 * 5 * 4 % 64)) ]; then
    fail "y.npy does not hold 60 float32 values after a 64-byte aligned header"
fi
# the output fed back in gives the same output
octet run "$relu/model.onnx" -i "$tmp/outdir/nested/y.npy" -o "$tmp/outdir2"
expect 0 "run on an .npy written by run -o"
checks=$((checks + 1))
cmp -s "$tmp/outdir/nested/y.npy" "$tmp/outdir2/y.npy" || fail "relu(relu(x)) differs from relu(x)"

# the README demo: one MRI slice (uint8 [128, 128] in an .npz) into the [N, 1, 128, 128] float
# classifier; sample 300 of the validation split is labelled 2 (notumor)
octet run "$source_root/models/brain_tumor_cnn.onnx" -i "$mri:x@300"
expect 0 "README demo"; expect_out "logits: float32 [1, 4]" "README demo output"
checks=$((checks + 1))
grep -m1 "class " "$tmp/out" | grep -q "class 2 " || fail "README demo: the top class of sample 300 is not 2"

octet inspect "$relu/model.onnx"
expect 0 "inspect"; expect_out "plan stats: 1 nodes per run" "inspect prints the plan stats"
octet inspect "$relu/model.onnx" --json
expect 0 "inspect --json"; expect_out '"memory"' "inspect --json"

# ---- validate: the demo classifier against itself over the whole validation split ----
# (under an emulator, 48 images: the whole split takes minutes there)
brain=$source_root/models/brain_tumor_cnn.onnx
if [ -z "${OCTET_WRAPPER:-}" ]; then
    octet validate "$brain" "$brain" --data "$mri"
    expect 0 "validate approves a model against itself"
    expect_out "97.44%" "validate accuracy of the demo classifier"
    expect_out "flips: 0 of 702 images" "validate flips"
else
    octet validate "$brain" "$brain" --data "$mri" --limit 48
    expect 0 "validate approves a model against itself"
    expect_out "flips: 0 of 48 images" "validate flips"
fi
expect_out "yes (0 differ)" "validate batch invariance"
expect_out "APPROVED" "validate verdict"
octet validate "$brain" "$brain" --data "$mri" --limit 16 --json
expect 0 "validate --json"; expect_out '"verdict": "APPROVED"' "validate --json verdict"
octet validate "$brain" --data "$mri"
expect_error 2 "missing INT8 model" "validate with one model"
octet validate "$brain" "$brain" --data "$mri" --preprocess imagenet
expect_error 1 "3 mean/std values" "validate imagenet spec on a gray model"
octet validate "$brain" "$brain" --data "$shared/data/skin_isic_8c/skin_isic_8c_128_val.npz"
expect_error 1 "do not fit the model input" "validate RGB data on a gray model"

# ---- quantize + validate on raw RGB images with --preprocess (models/skin_cnn.onnx: 3x96x96,
# ImageNet-normalised; the data are 128x128 uint8 HWC, so this resizes, scales and normalises) ----
skin=$source_root/models/skin_cnn.onnx
skin_data=$shared/data/skin_isic_8c
# (under an emulator: 4 calibration and 8 validation images)
if [ -z "${OCTET_WRAPPER:-}" ]; then skin_calib=16; skin_limit=220; else skin_calib=4; skin_limit=8; fi
octet quantize "$skin" --calib "$skin_data/skin_isic_8c_128_calib.npz" --preprocess imagenet --limit $skin_calib \
    -o "$tmp/skin_int8.onnx"
expect 0 "quantize --preprocess imagenet on raw RGB images"
expect_out "nodes run int8 in octet" "quantize reports the int8 nodes"
octet validate "$skin" "$tmp/skin_int8.onnx" --data "$skin_data/skin_isic_8c_128_val.npz" --preprocess imagenet \
    --limit $skin_limit
checks=$((checks + 1))
[ "$status" -eq 0 ] || [ "$status" -eq 3 ] || fail "validate --preprocess imagenet: exit status $status"
expect_out "classification, 8 classes" "validate on the skin data"
if [ "$skin_limit" -eq 220 ]; then expect_out "accuracy                        68.18%" "skin fp32 val accuracy"; fi
octet quantize "$skin" --calib "$skin_data/skin_isic_8c_128_calib.npz" -o "$tmp/x.onnx" --target-drop 1
expect_error 2 "--target-drop needs --val" "quantize --target-drop without --val"

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
