#!/usr/bin/env bash
# Names the BLAS a benchmark's LibTorch will load, for --benchmark_context=blas=...: given the directory
# scripts/local-openblas.sh printed (put first on LD_LIBRARY_PATH), "openblas-<version>" from its
# libopenblas*-r<version>.so; given nothing, the system's libblas.so.3 ("reference-blas" unless the
# system's alternative points at OpenBLAS). bench_model checks the claim from its own /proc/self/maps.
set -uo pipefail
dir="${1:-}"
name_of() {  # a libblas.so.3 path (symlinks resolved) -> a name
  local real
  real=$(readlink -f "$1" 2>/dev/null) || { echo unknown; return; }
  case "$real" in
    *openblas*) local v; v=$(ls "$(dirname "$real")" 2>/dev/null | sed -n 's/^libopenblas.*-r\([0-9.]*\)\.so$/\1/p' | head -1)
                echo "openblas-${v:-unknown}" ;;
    */blas/libblas.so*) echo "reference-blas" ;;
    *) echo "other:$real" ;;
  esac
}
if [[ -n "$dir" && -e "$dir/libblas.so.3" ]]; then
  name_of "$dir/libblas.so.3"
else
  sys=$(/sbin/ldconfig -p 2>/dev/null | awk '/libblas\.so\.3 .*x86-64/ {print $NF; exit}')
  [[ -n "$sys" ]] && name_of "$sys" || echo "none"
fi
