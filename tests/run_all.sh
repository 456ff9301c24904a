#!/bin/sh
# The test command of the README (and of CI): installs dependencies, builds octet natively, with
# AddressSanitizer+UBSan, and for aarch64 (tests under qemu), exports the model zoo and compares
# octet against ONNX Runtime. Ends with one line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SHARED=${OCTET_SHARED:-$ROOT/../shared}
OUT=${OCTET_TEST_OUT:-$ROOT/build-test}
mkdir -p "$OUT"
PASSED=0
FAILED=0
step() { # step NAME COMMAND...: runs one step, counts it when it is not a meson test run
    name=$1; shift
    echo "=== $name"
    if "$@"; then echo "=== $name: ok"; return 0; fi
    echo "=== $name: FAILED"; return 1
}
count_meson() { # adds the results of a meson test log to the totals
    log=$1/meson-logs/testlog.json
    if [ ! -f "$log" ]; then FAILED=$((FAILED + 1)); return; fi
    p=$(grep -c '"result": "OK"' "$log" || true)
    f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
    echo "    $1: $p passed, $f failed"
}
count_summary() { # adds the "N passed, N failed" last line of a log to the totals
    line=$(tail -n 1 "$1" | grep -E '^[0-9]+ passed, [0-9]+ failed$' || echo "0 passed, 1 failed")
    PASSED=$((PASSED + ${line%% passed*})); f=${line#*, }; FAILED=$((FAILED + ${f%% failed}))
}
run_step() { if step "$@"; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi; }

run_step "install dependencies" sh tests/install_deps.sh
run_step "onnxruntime-node (reference only)" sh -c "cd bench && npm install --no-audit --no-fund --ignore-scripts >/dev/null"

# Native release build: unit tests, conformance, model zoo against ONNX Runtime.
run_step "export model zoo" /usr/bin/python3 models/export_zoo.py "$OUT/zoo"
# Fresh build directories every time (build-ci*: a developer's own build/ is left alone).
setup() { rm -rf "$1" && meson setup "$@" >/dev/null && ninja -C "$1"; }
if step "build (release)" setup build-ci -Dshared_dir="$SHARED" -Dzoo_dir="$OUT/zoo"; then
    PASSED=$((PASSED + 1))
    meson test -C build-ci --print-errorlogs --num-processes 2
    count_meson build-ci
else
    FAILED=$((FAILED + 1))
fi

# AddressSanitizer + UBSan: unit tests and conformance (the model zoo is too slow here).
if step "build (asan+ubsan)" setup build-ci-asan -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
        -Db_lundef=false -Dshared_dir="$SHARED"; then
    PASSED=$((PASSED + 1))
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
        meson test -C build-ci-asan --print-errorlogs --num-processes 2 --no-suite models
    count_meson build-ci-asan
else
    FAILED=$((FAILED + 1))
fi

# aarch64 cross build, tests under qemu-user.
if step "build (aarch64 cross)" setup build-ci-arm --cross-file cross/aarch64-linux-gnu.txt -Dshared_dir="$SHARED"; then
    PASSED=$((PASSED + 1))
    # qemu's default CPU has the dot-product extension; the ISA tests run again on a core without it.
    meson test -C build-ci-arm --print-errorlogs --num-processes 2 --no-suite models
    count_meson build-ci-arm
    QEMU_CPU=cortex-a53 meson test -C build-ci-arm --print-errorlogs --num-processes 2 \
        kernels_isa quant_isa ops_quant conformance
    count_meson build-ci-arm
    # int8 zoo: aarch64 NEON and dot-product outputs byte-identical to the native ref kernels.
    echo "=== int8 zoo identity, aarch64 under qemu vs native ref"
    /usr/bin/python3 tests/int8_emulated_test.py build-ci/tools/octet build-ci-arm/tools/octet "$OUT/zoo" \
        build-ci/zoo_int8 "$OUT/emulated" -- qemu-aarch64 /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 \
        --library-path /usr/aarch64-linux-gnu/lib:/usr/lib/aarch64-linux-gnu | tee "$OUT/emulated.log"
    count_summary "$OUT/emulated.log"
else
    FAILED=$((FAILED + 1))
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
