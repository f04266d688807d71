#!/usr/bin/env bash
# Times poem::model::tower of the headers at REF ("before") against the working tree's ("after") in one
# process, the two builds interleaved call by call (scripts/ab_tower.cpp), on the shipped demo model
# or MODEL; prints medians of 100, 1000 and 4000 rows in bf16 and fp32, their ratio, and whether the
# outputs are bit-identical. Built -O2 -march=native (CXXFLAGS adds to that); the model's
# dependencies (xsimd, nlohmann-json) come from `make deps`.
# Usage: scripts/ab_tower.sh REF [MODEL]
set -euo pipefail
ref=${1:?usage: scripts/ab_tower.sh REF [MODEL]}
root=$(cd "$(dirname "$0")/.." && pwd)
model=$(realpath "${2:-$root/data/kuairand_sample/poem_model.safetensors}")
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/before" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$root" worktree add --detach "$work/before" "$ref" >/dev/null 2>&1
read -r -a extra <<< "${CXXFLAGS:-}"
flags=(-O2 -march=native -std=c++17 "${extra[@]}")
side=(-fPIC -shared -fvisibility=hidden -fvisibility-inlines-hidden -Wl,-Bsymbolic)
echo "poem: building $ref and the working tree" >&2
g++ "${flags[@]}" "${side[@]}" -DAB_SIDE=before -I"$work/before/include" "$root/scripts/ab_tower.cpp" -o "$work/libab_before.so" &
g++ "${flags[@]}" "${side[@]}" -DAB_SIDE=after -I"$root/include" "$root/scripts/ab_tower.cpp" -o "$work/libab_after.so" &
wait %1 && wait %2
g++ "${flags[@]}" "$root/scripts/ab_tower.cpp" -L"$work" -lab_before -lab_after -Wl,-rpath,"$work" -o "$work/ab_tower"
"$work/ab_tower" "$model"
