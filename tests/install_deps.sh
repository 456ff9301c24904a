#!/bin/sh
# Installs what octet needs on Debian 12: with --build-only just the compiler and libraries,
# otherwise also the cross toolchain, qemu, Python (model zoo export) and Node.js (ONNX Runtime).
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
BUILD="gcc libc6-dev meson ninja-build pkg-config protobuf-c-compiler libprotobuf-c-dev libonnx-dev check"
if [ "${1:-}" = "--build-only" ]; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends $BUILD >/dev/null
    exit 0
fi
$SUDO dpkg --add-architecture arm64
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $BUILD \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
    libprotobuf-c-dev:arm64 check:arm64 \
    python3 python3-numpy python3-onnx python3-torch python3-torchvision ca-certificates >/dev/null
# Node.js runs ONNX Runtime for the reference side; machines that ship their own Node keep it.
command -v npm >/dev/null || $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
