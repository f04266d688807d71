#!/usr/bin/env bash
# Prints a directory holding Debian's OpenBLAS (libblas.so.3), unpacked under build/openblas without
# installing it, for LD_LIBRARY_PATH. Debian's python3-torch calls whichever libblas.so.3 the system
# gives it; the default reference BLAS makes training here about 4x slower. Installing
# libopenblas0-pthread would switch the BLAS of the whole machine (and the model fixtures' last bits),
# so the evaluation borrows it for its own process only. Prints nothing if it cannot be had (the
# evaluation then runs, slower, on the reference BLAS).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)/build/openblas"
lib="$root/usr/lib/x86_64-linux-gnu/openblas-pthread"
if [[ ! -e "$lib/libblas.so.3" ]]; then
  mkdir -p "$root"
  ( cd "$root" && apt-get download -qq libopenblas0-pthread >/dev/null 2>&1 \
      && dpkg -x libopenblas0-pthread_*.deb . ) \
    || { echo "poem: could not fetch libopenblas0-pthread; training uses the reference BLAS" >&2; exit 0; }
fi
[[ -e "$lib/libblas.so.3" ]] && echo "$lib"
exit 0
