#!/bin/sh
# End-to-end test of `octet bench`: --json prints exactly one JSON object with the required keys
# and values that fit together; --profile accounts for the run time; bad arguments and models
# with non-float inputs fail with one line.
# usage: bench_test.sh OCTET_BINARY SHARED_DIR SOURCE_ROOT PYTHON
# OCTET_WRAPPER (optional) prefixes every run (qemu for a cross build).
set -u
octet_bin=$1
nodes=$2/onnx-node-tests
source_root=$3
python=$4
cnn=$source_root/models/brain_tumor_cnn.onnx
tmp=$(mktemp -d "${TMPDIR:-/tmp}/octet-bench-XXXXXX") || exit 1
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
    echo "  stdout: $(head -c 600 "$tmp/out")"
    echo "  stderr: $(head -c 400 "$tmp/err")"
    failures=$((failures + 1))
}

expect() {
    checks=$((checks + 1))
    [ "$status" -eq "$1" ] || fail "$2: exit status $status, expected $1"
}

# expect_json DESCRIPTION PYTHON_EXPR: stdout is one JSON object `r` for which the expression holds
expect_json() {
    checks=$((checks + 1))
    if ! "$python" - "$tmp/out" "$2" >"$tmp/py" 2>&1 <<'PY'
import json, sys
text = open(sys.argv[1]).read()
r = json.loads(text)  # fails on anything but exactly one JSON value
assert isinstance(r, dict), "not an object"
assert text.strip().count("\n") == 0, "more than one line"
ok = eval(sys.argv[2], {"r": r})
assert ok, "does not hold: " + sys.argv[2]
PY
    then
        fail "$1: $(tail -n 1 "$tmp/py")"
    fi
}

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

expect_out() {
    checks=$((checks + 1))
    grep -qF -- "$1" "$tmp/out" || fail "$2: stdout does not hold '$1'"
}

required='all(k in r for k in ("median_ms", "p90_ms", "min_ms", "load_ms", "peak_rss_mb", "threads", "batch"))'
sane='0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"] < 60000 and 0 < r["load_ms"] < 60000 and 1 < r["peak_rss_mb"] < 100000'

octet bench "$cnn" --iters 3 --json
expect 0 "bench --json"
expect_json "bench --json has the required keys" "$required"
expect_json "bench --json values are sane" "$sane"
expect_json "bench --json echoes the settings" 'r["iters"] == 3 and r["warmup"] == 5 and r["batch"] == 1 and r["threads"] >= 1 and r["nodes"] > 0'
expect_json "images/s is batch over the median" 'abs(r["images_per_s"] - r["batch"] / (r["median_ms"] / 1e3)) <= 1e-3 * r["images_per_s"] + 1e-3'

octet bench "$cnn" --threads 1 --batch 3 --warmup 0 --iters 2 --json
expect 0 "bench --batch 3 --json"
expect_json "bench --batch 3 plans a batch of 3" 'r["batch"] == 3 and r["threads"] == 1 and r["input_shape"] == "[3, 1, 128, 128]" and r["warmup"] == 0'

octet bench "$cnn" --iters 4 --json --profile
expect 0 "bench --profile --json"
expect_json "the profile covers every node type once" 'len(set(o["op"] for o in r["profile"]["ops"])) == len(r["profile"]["ops"]) and sum(o["nodes"] for o in r["profile"]["ops"]) == r["nodes"]'
expect_json "profile percentages add up to 100" 'abs(sum(o["percent"] for o in r["profile"]["ops"]) - 100) < 0.1'
expect_json "node times fit inside the runs" 'r["profile"]["runs"] == 4 and 0 < r["profile"]["node_ms"] <= r["mean_ms"] * 1.001'
expect_json "the top nodes are the slowest, with precision and fused epilogue" 'len(r["profile"]["top_nodes"]) == min(15, r["nodes"]) and [n["ms"] for n in r["profile"]["top_nodes"]] == sorted((n["ms"] for n in r["profile"]["top_nodes"]), reverse=True) and all(n["precision"] == "fp32" for n in r["profile"]["top_nodes"]) and any(n["op"] == "Conv" and "Relu" in n["fused"] for n in r["profile"]["top_nodes"])'

octet bench "$cnn" --iters 2 --profile
expect 0 "bench --profile"
expect_out "median" "text report"
expect_out "images/s" "text report"
expect_out "peak RSS" "text report"
expect_out "top 13 nodes" "profile lists every node of a 13-node plan"

octet bench "$cnn" --iters 2 --top 4 --json
expect 0 "bench --top 4 --json"
expect_json "--top implies --profile and lists that many nodes" 'len(r["profile"]["top_nodes"]) == 4'
octet bench "$cnn" --top many
expect_error 2 "--top" "bench --top with a non-number"

# two float inputs (x and W), both random
octet bench "$nodes/test_conv_with_strides_padding/model.onnx" --iters 2 --warmup 0 --json
expect 0 "bench a two-input node test"
expect_json "two-input node test" "$required and $sane"

octet bench "$nodes/test_qlinearconv/model.onnx" --iters 2
expect_error 1 "float32" "a uint8 input is refused"
octet bench "$cnn" --iters 0
expect_error 2 "--iters" "--iters 0"
octet bench --json
expect_error 2 "missing MODEL" "no model"
octet bench "$tmp/missing.onnx"
expect_error 1 "missing.onnx" "missing file"

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
