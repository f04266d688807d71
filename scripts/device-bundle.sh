#!/usr/bin/env bash
# Stages what scripts/device-check.sh runs on a lent machine that has none of poem's Debian packages:
# the dispatch build's tests and benches (LibTorch left out: Debian's does not travel; the check
# compiles bench_model there against that machine's PyTorch), their shared libraries, and the headers
# and static library the LibTorch bench needs.
# Usage: [BEFORE=<bench_model of another commit>] scripts/device-bundle.sh [build dir] [stage dir]
set -euo pipefail
build=${1:-build/devbuild}
stage=${2:-build/devrun}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE= -DPOEM_FETCH_DEPS=OFF -DPython3_EXECUTABLE=/usr/bin/python3 \
  -DCMAKE_CXX_FLAGS=-O2 -DPOEM_DISPATCH=ON -DPOEM_BUILD_BENCH=ON -DPOEM_BUILD_PYTHON=OFF \
  -DCMAKE_DISABLE_FIND_PACKAGE_Torch=ON > "$build.configure.log"
tests="test_model test_dispatch test_fusion test_loss test_primitives"
benches="bench_model bench_fusion bench_pipeline bench_order"
cmake --build "$build" -j "$(nproc)" --target poem_dispatch $tests $benches
rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/lib" "$stage/include"
for t in $tests; do cp "$build/tests/$t" "$stage/bin/"; done
for b in $benches; do cp "$build/bench/$b" "$stage/bin/"; done
# The core's FMA and AMX peaks, measured beside the benches (device-check.sh).
g++ -O2 -o "$stage/bin/cpu_peak" scripts/cpu_peak.cpp
# BEFORE=<another build's bench_model>: run beside this one, alternating (device-check.sh).
if [ -n "${BEFORE:-}" ]; then cp "$BEFORE" "$stage/bin/bench_model_before"; fi
cp "$build/libpoem_dispatch.a" /usr/lib/x86_64-linux-gnu/libbenchmark_main.a "$stage/lib/"
for l in libbenchmark.so.1debian libgomp.so.1 libOpenCL.so.1; do cp -L "/lib/x86_64-linux-gnu/$l" "$stage/lib/"; done
xz -T0 -6 -c /lib/x86_64-linux-gnu/libdnnl.so.2 > "$stage/lib/libdnnl.so.2.xz"
ln -s libbenchmark.so.1debian "$stage/lib/libbenchmark.so"
tar -C /usr/include -cf - xsimd xtl nlohmann benchmark | tar -C "$stage/include" -xf -
du -sh "$stage"
