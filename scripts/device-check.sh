#!/usr/bin/env bash
# The checks that need a CPU this machine is not: run on a lent machine, from the repository root, with
# build/devrun staged by scripts/device-bundle.sh (carried along). Writes logs and benchmark JSON under
# /tmp/device-out, packed into $OUT/results.tgz (or build/device-out), and prints a short summary last.
#   1. the CPU, and the SIMD targets poem picks on it;
#   2. the tests that walk every target (the bf16 GEMM's 0-ULP agreement with the scalar reference,
#      on avx512bf16 too), each binary on its best target and again on avx512;
#   3. one thread each, pinned: poem's tower and forward pass in fp32 and bf16 on avx512bf16 and on
#      avx512, oneDNN's matmuls (Debian's 2.6, carried), LibTorch (compiled here against this machine's
#      PyTorch), ranks at small N, the whole request, and Pareto levels at N = 20000; and the core's
#      FMA and AMX peaks (scripts/cpu_peak.cpp), to quote fractions of peak from the same run.
set -uo pipefail
root=$PWD
run=$root/build/devrun
final=${OUT:-$root/build/device-out}  # what comes back: the summary, the log's files in one archive
out=/tmp/device-out
mkdir -p "$final" "$out" /tmp/devlib
cp "$run"/lib/* /tmp/devlib/ && xz -dc "$run/lib/libdnnl.so.2.xz" > /tmp/devlib/libdnnl.so.2 && rm -f /tmp/devlib/*.xz
export LD_LIBRARY_PATH=/tmp/devlib OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# The binaries name their fixtures by the path they were built in.
[ -e /work/main ] || { mkdir -p /work && ln -s "$root" /work/main; }
B=$run/bin

{ echo "== cpu"; lscpu | grep -E "Model name|Socket|Core|Thread|MHz|L1d|L2|L3"
  grep -m1 -o -w 'avx512[a-z_0-9]*\|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
  grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E 'avx512|amx' | sort -u | tr '\n' ' '; echo; } | tee "$out/cpu.txt"

# LibTorch: this machine's PyTorch (one process compile, in the background while the tests run).
torch_dir=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null)
( if [ -n "$torch_dir" ] && command -v g++ >/dev/null; then
    g++ -O2 -std=c++17 -DPOEM_DISPATCH -DPOEM_HAVE_LIBTORCH -DPOEM_SOURCE_DIR=\"/work/main\" -Iinclude \
      -isystem "$run/include" -isystem "$torch_dir/include" -isystem "$torch_dir/include/torch/csrc/api/include" \
      bench/bench_model.cpp -o /tmp/bench_model_torch "$run/lib/libbenchmark_main.a" "$run/lib/libpoem_dispatch.a" \
      -L/tmp/devlib -lbenchmark -L"$torch_dir/lib" -ltorch_cpu -lc10 -Wl,-rpath,"$torch_dir/lib" -lpthread
  else echo "no PyTorch or no g++ here"; fi ) > "$out/torch_build.log" 2>&1 &
torch_pid=$!

echo "== tests"
pids=()
for t in ${TESTS-test_model test_dispatch test_fusion test_loss test_primitives}; do
  for s in "" avx512 avx512bf16 amx; do
    ( POEM_SIMD=$s POEM_TEST_SKIP_UNSUPPORTED=1 timeout 300 "$B/$t" > "$out/$t${s:+_$s}.log" 2>&1
      echo "$t [${s:-best}] rc=$? $(tail -2 "$out/$t${s:+_$s}.log" | tr '\n' ' ')" ) &
    pids+=($!)
  done
done
[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}"
wait $torch_pid; tail -3 "$out/torch_build.log"
cat "$out"/test_*.log 2>/dev/null | grep -B2 -A12 "FAILED" | head -60 > "$out/failures.txt"

echo "== benches (one thread, pinned)"
pin=$(command -v taskset >/dev/null && echo "taskset -c ${PIN_CORE:-2}")
# The core's peaks (GFLOP/s), so that a kernel's fraction of peak comes from this run.
[ -x $B/cpu_peak ] && $pin $B/cpu_peak | tee "$out/peak.txt"
reps=${REPS:-5} min_time=${MIN_TIME:-0.2}
bench() {  # name filter target [extra args]
  local bin=$1 filter=$2 target=$3; shift 3
  POEM_SIMD=$target $pin "$bin" --benchmark_filter="$filter" --benchmark_repetitions=$reps \
    --benchmark_report_aggregates_only=true --benchmark_min_time=$min_time --benchmark_out_format=json "$@"
}
model='BM_model_(mlp|mlp_bf16|predict|predict_bf16)/1000$'
for r in $(seq 1 "${ROUNDS:-1}"); do  # alternating rounds: drifts in clock hit every side alike
  bench $B/bench_model "$model|BM_model_mlp_onednn/(fp32|bf16)/1000$" "" --benchmark_out="$out/model_best_$r.json" > /dev/null
  for t in avx512 avx512bf16 amx; do
    bench $B/bench_model "$model" $t --benchmark_out="$out/model_${t}_$r.json" > /dev/null
  done
  # BEFORE=path: the same bench built from another commit (scripts/device-bundle.sh stages it as bench_model_before)
  [ -x $B/bench_model_before ] && bench $B/bench_model_before "$model" avx512 --benchmark_out="$out/model_before_$r.json" > /dev/null
  [ -x /tmp/bench_model_torch ] && bench /tmp/bench_model_torch 'BM_model_predict_libtorch/(100|1000)$|BM_model_predict(_bf16)?/1000$' \
    "" --benchmark_out="$out/model_libtorch_$r.json" > /dev/null
  bench $B/bench_pipeline 'BM_pipeline_request(_bf16)?/N:1000$' "" --benchmark_out="$out/pipeline_$r.json" > /dev/null
done
bench $B/bench_fusion 'BM_fusion_rank(_naive)?/K:4/N:(100|256|1000)$' "" --benchmark_out="$out/fusion.json" > /dev/null
[ -n "${SKIP_ORDER:-}" ] || $pin $B/bench_order \
  --benchmark_filter='BM_order_pareto(_ensbs)?/N:20000/K:[4-8]/correlated:0|BM_order_pareto(_ensbs)?/N:2000/K:[23]/correlated:0$|BM_order_pareto(_ensbs)?_tied' \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true --benchmark_out_format=json \
  --benchmark_out="$out/order.json" > /dev/null
echo "== summary (medians)"
python3 - "$out" <<'PY' | tee "$out/summary.txt"
import json, sys, glob, os
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    d = json.load(open(f))
    print(os.path.basename(f), "poem_simd =", d["context"].get("poem_simd_target"), d["context"].get("cpu_model"), "| mhz", d["context"].get("mhz_per_cpu"))
    for b in d["benchmarks"]:
        if b.get("aggregate_name") == "median":
            extra = b.get("GFLOP/s") or b.get("items_per_second")
            print(f"{os.path.basename(f)[:-5]:18} {b['run_name']:58} {b['real_time']:12.1f} {b['time_unit']} {extra or '':>10.4g}" if extra else
                  f"{os.path.basename(f)[:-5]:18} {b['run_name']:58} {b['real_time']:12.1f} {b['time_unit']}")
PY
cp "$out/summary.txt" "$out/cpu.txt" "$out/peak.txt" "$out/failures.txt" "$final/" 2>/dev/null
tar -czf "$final/results.tgz" -C "$out" .
