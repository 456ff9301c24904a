#!/bin/sh
# Installs everything octet's build, tests, cross tests and model tests need on Debian 12.
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO dpkg --add-architecture arm64
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    gcc libc6-dev meson ninja-build pkg-config \
    protobuf-c-compiler libprotobuf-c-dev libonnx-dev check \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
    libprotobuf-c-dev:arm64 check:arm64 \
    python3 python3-numpy python3-onnx python3-torch python3-torchvision \
    nodejs npm ca-certificates >/dev/null
