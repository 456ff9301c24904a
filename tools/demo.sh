#!/bin/sh
# The README demo: installs the build dependencies, builds octet and classifies one real brain MRI
# slice from the shared validation split with the committed model. No Python involved.
set -eu
cd "$(dirname "$0")/.."
SHARED=${OCTET_SHARED:-../shared}
sh tests/install_deps.sh --build-only
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
VAL=$SHARED/data/brain_tumor_mri_4c/brain_tumor_mri_4c_128_val.npz
echo "classes: 0 glioma, 1 meningioma, 2 notumor, 3 pituitary"
for i in 0 1 2; do
    echo "--- validation image $i"
    build/tools/octet run models/brain_tumor_cnn.onnx -i "$VAL:x@$i"
done
build/tools/octet inspect models/brain_tumor_cnn.onnx | tail -n 1
