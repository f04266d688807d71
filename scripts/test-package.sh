#!/usr/bin/env bash
# Tests the Python package as a user gets it (docs/python_package.md): a fresh virtual environment on
# Debian's Python, `pip install .` offline, imports and the binding tests from outside the checkout
# against the installed module, then `pip wheel` and what the wheel holds.
#
#   scripts/test-package.sh [WORK_DIR]     (default build/package; the venv and the wheel go there)
#
# PYTHON (default /usr/bin/python3, never the first python3 on PATH) and JOBS (default nproc) are read
# from the environment. pip builds in the checkout: scikit-build keeps its CMake build in _skbuild/,
# so a second run only recompiles what changed.
set -euo pipefail

PYTHON="${PYTHON:-/usr/bin/python3}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mkdir -p "${1:-$repo/build/package}" && cd "${1:-$repo/build/package}" && pwd)"
venv="$work/venv"
dist="$work/dist"
outside="$(mktemp -d)"
trap 'rm -rf "$outside"' EXIT

# Nothing from the caller's environment may choose the module or the packages: no PYTHONPATH, no
# user site-packages. pip stays offline and quiet about its own version.
unset PYTHONPATH PYTHONHOME
export PYTHONNOUSERSITE=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
export CMAKE_BUILD_PARALLEL_LEVEL="${JOBS:-$(nproc)}"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

step() { echo "== test-package: $*"; }
seconds() { echo $(( $(date +%s) - $1 )); }

step "fresh venv $venv ($("$PYTHON" --version), --system-site-packages for numpy and torch)"
rm -rf "$venv" "$dist"
"$PYTHON" -m venv --system-site-packages "$venv"
py="$venv/bin/python"

step "pip install --no-build-isolation --no-index ${repo}[ref]"
# Keep scikit-build's CMake build (the slow part), not what it copies from it: setuptools' staging
# directories would carry files that the package no longer has into the wheel.
skbuild_dir="$repo/$("$py" -c 'from skbuild.constants import SKBUILD_DIR; print(SKBUILD_DIR())')"
rm -rf "$skbuild_dir/setuptools" "$skbuild_dir/cmake-install"
t0=$(date +%s)
"$py" -m pip install -v --no-build-isolation --no-index "${repo}[ref]" > "$work/install.log" 2>&1 \
  || { tail -60 "$work/install.log"; echo "poem: test-package: pip install failed (log: $work/install.log)"; exit 1; }
echo "   installed in $(seconds "$t0") s (log: $work/install.log)"

# The module's own compile line must carry no -m flag (runtime dispatch adds its own per target
# elsewhere); python/CMakeLists.txt refuses global ones, this checks what the compiler was given.
build_dir="$skbuild_dir/cmake-build"
if [[ -f "$build_dir/build.ninja" ]]; then
  compile="$(ninja -C "$build_dir" -t commands python/CMakeFiles/poem_python.dir/bindings/module.cpp.o | tail -1)"
else
  compile="$(cat "$build_dir/python/CMakeFiles/poem_python.dir/flags.make")"
fi
if grep -Eq -- '(^| )-m(arch|cpu)=|(^| )-m(sse|avx|fma|bmi)' <<< "$compile"; then
  echo "$compile"; echo "poem: test-package: the module was compiled with -m flags"; exit 1
fi
echo "   module.cpp compiled with: $(grep -Eo -- '(^| )-O[0-9s]|(^| )-m[a-z0-9=.-]+' <<< "$compile" | tr -d '\n')"

# The package is built with runtime dispatch (setup.py): one wheel for every x86-64 CPU.
grep -q '^POEM_DISPATCH:BOOL=ON' "$build_dir/CMakeCache.txt" \
  || { echo "poem: test-package: the package was not configured with POEM_DISPATCH=ON"; exit 1; }

step "imports and a smoke run from $outside (outside the checkout)"
cd "$outside"
"$py" - "$venv" <<'EOF'
import importlib.metadata
import pathlib
import sys

import numpy as np

import poem
import poem_ref

venv = pathlib.Path(sys.argv[1]).resolve()
for m in (poem, poem_ref):
    path = pathlib.Path(m.__file__).resolve()
    assert venv in path.parents, f"{m.__name__} comes from {path}, not from {venv}"
    print(f"   {m.__name__}: {path}")
try:
    import poem_eval  # noqa: F401  (the evaluation stays in the checkout: docs/python_package.md)
    raise AssertionError("poem_eval is importable outside the checkout but is not packaged")
except ImportError:
    pass
assert poem.__version__ == importlib.metadata.version("poem"), (poem.__version__, importlib.metadata.version("poem"))

scores = np.array([[0.9, 0.1, 0.5, 0.7], [10.0, 30.0, 20.0, 40.0]], dtype=np.float32)
objectives = [poem.ObjectiveConfig(poem.Direction.higher_is_better, poem.Normalization.rank_pct, 1.0),
              poem.ObjectiveConfig(poem.Direction.lower_is_better, poem.Normalization.rank_pct, 1.0)]
out = poem.fuse(scores, poem.FusionConfig(objectives))
assert out["order"][0] == 0, out  # item 0 is the best on both objectives
assert poem.SIMD_DISPATCH, "the package's module was built without runtime dispatch"
targets = poem.simd_targets()
assert targets[-1] == "scalar" and poem.simd_target() == targets[0], targets
print(f"   poem {poem.__version__}: fused order {out['order'].tolist()}, SIMD target {poem.simd_target()} of {targets}")
EOF

step "python/tests/test_bindings*.py against the installed package"
t0=$(date +%s)
"$py" -m unittest discover -s "$repo/python/tests" -p 'test_bindings*.py' > "$work/tests.log" 2>&1 \
  || { tail -60 "$work/tests.log"; echo "poem: test-package: binding tests failed (log: $work/tests.log)"; exit 1; }
echo "   $(grep -E '^Ran [0-9]+ tests' "$work/tests.log") in $(seconds "$t0") s: $(tail -1 "$work/tests.log")"

step "pip wheel --no-build-isolation --no-deps --no-index -w $dist"
t0=$(date +%s)
"$py" -m pip wheel -v --no-build-isolation --no-deps --no-index -w "$dist" "$repo" > "$work/wheel.log" 2>&1 \
  || { tail -60 "$work/wheel.log"; echo "poem: test-package: pip wheel failed (log: $work/wheel.log)"; exit 1; }
wheels=("$dist"/poem-*.whl)
[[ ${#wheels[@]} -eq 1 && -f "${wheels[0]}" ]] || { echo "poem: test-package: expected one wheel in $dist"; ls -l "$dist"; exit 1; }
"$py" - "${wheels[0]}" <<'EOF'
import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
module = [n for n in names if n.startswith("poem.") and n.endswith(".so") and "/" not in n]
need = ["poem_ref/__init__.py", "poem_ref/model.py", "poem_ref/export.py", "poem_ref/safetensors_io.py"]
missing = [n for n in need if n not in names]
# The module, poem_ref and the wheel's metadata, nothing else (no poem_eval, no egg-info, no sources).
stray = [n for n in names if n not in module and not n.startswith("poem_ref/")
         and not (n.startswith("poem-") and n.split("/")[0].endswith(".dist-info"))]
assert len(module) == 1 and not missing and not stray, (module, missing, stray, names)
print(f"   {sys.argv[1].rsplit('/', 1)[-1]}: {module[0]}, poem_ref ({len(names)} files)")
EOF
echo "   wheel built in $(seconds "$t0") s"
step "passed"
