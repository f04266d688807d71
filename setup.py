"""Builds the `poem` Python package with scikit-build (0.16, Debian's python3-skbuild): CMake compiles the
pybind11 module, setuptools adds the pure-Python `poem_ref`. Metadata is in pyproject.toml; only what
needs code is here. Usage and the reasons for each flag: docs/python_package.md."""
import os
import re
import sys

from skbuild import setup

HERE = os.path.dirname(os.path.abspath(__file__))


def project_version():
    # One source of truth: project(poem VERSION x.y.z) in CMakeLists.txt (version.hpp is checked against it).
    with open(os.path.join(HERE, "CMakeLists.txt"), encoding="utf-8") as f:
        match = re.search(r"project\(\s*poem\s+VERSION\s+([0-9]+(?:\.[0-9]+)*)", f.read())
    if not match:
        raise RuntimeError("setup.py: no `project(poem VERSION x.y.z)` in CMakeLists.txt")
    return match.group(1)


setup(
    version=project_version(),
    # "" is the python/ directory itself: the module that CMake installs there lands at the top of
    # site-packages as `poem`; without it scikit-build would treat the module as a data file and
    # install it outside site-packages. setuptools warns that '' is not a valid package name: harmless.
    packages=["", "poem_ref"],
    package_dir={"": "python"},
    cmake_install_dir="python",
    cmake_args=[
        # The module only: no tests, benches, examples or install rules of the C++ library.
        "-DPOEM_BUILD_TESTS=OFF",
        "-DPOEM_BUILD_BENCH=OFF",
        "-DPOEM_BUILD_EXAMPLES=OFF",
        "-DPOEM_INSTALL=OFF",
        "-DPOEM_BUILD_PYTHON=ON",
        "-DPOEM_FETCH_DEPS=OFF",
        # Runtime SIMD dispatch, so that one wheel runs on every x86-64 CPU: hence plain -O2 and no -m
        # flag. scikit-build asks for a Release build; its -O3 -DNDEBUG is emptied so the flags are
        # exactly the Makefile's baseline ones.
        "-DPOEM_DISPATCH=ON",
        "-DCMAKE_CXX_FLAGS:STRING=-O2",
        "-DCMAKE_CXX_FLAGS_RELEASE:STRING=",
        # The module is built for the interpreter that runs pip, never the first python3 on PATH.
        f"-DPython3_EXECUTABLE:FILEPATH={sys.executable}",
    ],
)
