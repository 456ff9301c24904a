#!/bin/sh
# One command for the README's benchmark table: release build, model zoo and its int8 QDQ
# versions, ONNX Runtime from npm, then bench/run_bench.py (octet vs ORT, alternating, 3 passes,
# 1 and 2 threads) into bench/results/. Extra arguments go to run_bench.py (e.g. --quick).
# Needs the build dependencies (tests/install_deps.sh --build-only) and node/npm.
set -eu
cd "$(dirname "$0")/.."
WORK=${OCTET_BENCH_WORK:-build-bench}
[ -f "$WORK/build.ninja" ] || meson setup "$WORK" --buildtype=release -Dtests=false >/dev/null
ninja -C "$WORK" tools/octet
[ -f "$WORK/zoo/zoo.json" ] || /usr/bin/python3 models/export_zoo.py "$WORK/zoo"
[ -f "$WORK/zoo_int8/unet3d_in.onnx" ] || /usr/bin/python3 models/quantize_qdq.py --zoo "$WORK/zoo" "$WORK/zoo_int8"
[ -d bench/node_modules/onnxruntime-node ] || (cd bench && npm install --no-audit --no-fund --ignore-scripts)
exec /usr/bin/python3 bench/run_bench.py --models "$WORK/zoo" --int8 "$WORK/zoo_int8" --threads 1,2 --passes 3 \
    --octet "$WORK/tools/octet" --out bench/results "$@"
