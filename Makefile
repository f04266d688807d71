# poem's two commands: `make demo` and `make test` (and `make bench`). Each installs what is missing,
# configures, builds and runs. Builds live under build/<flavour>.

SHELL := /bin/bash
JOBS ?= $(shell nproc)
PYTHON := /usr/bin/python3
CMAKE_COMMON := -DCMAKE_BUILD_TYPE= -DPOEM_FETCH_DEPS=OFF -DPython3_EXECUTABLE=$(PYTHON)

BUILD_DEBS := g++ make cmake ccache xtl-dev libxsimd-dev xtensor-dev nlohmann-json3-dev catch2 libbenchmark-dev
PY_DEBS := python3 python3-dev python3-torch python3-numpy python3-pandas python3-matplotlib python3-tqdm pybind11-dev \
           python3-pip python3-venv python3-setuptools python3-wheel python3-skbuild \
           python3-dask python3-distributed
# examples/redis_host and its test (a real redis-server on a loopback port): docs/scale_out.md.
REDIS_DEBS := redis-server libhiredis-dev
FUZZ_DEBS := clang libclang-rt-14-dev libfuzzer-14-dev
TORCH_DEBS := libtorch-dev

# Every configure (the builds below, the consumer tests' and the Python package's through pip) compiles
# through ccache, its cache in this checkout's build/: a fresh clone starts cold, and within one
# `make test` the package's compile reuses the dispatch build's objects (the same -O2 flags: its pip
# install took 158 s, now 8 s). CMake reads the launcher from the environment on a first configure;
# recursively expanded, so that `make deps` has installed ccache by the time a recipe runs.
export CCACHE_DIR := $(CURDIR)/build/ccache
export CMAKE_CXX_COMPILER_LAUNCHER = $(shell command -v ccache)

NATIVE_FLAGS := -O2 -march=native
# The native build's tests include the strict consumer under clang++ too (clang comes with FUZZ_DEBS).
NATIVE_CMAKE := -DPOEM_BUILD_PYTHON=OFF -DPOEM_STRICT_CLANG=ON
# The benches' own compile options. `make test` compiles them at -O0 (test-native sets it below): a
# check that they compile and link, in half the time of -O2 (bench_pipeline.cpp 43 -> 20 s); such a
# binary refuses to time anything (bench/bench_common.hpp). `make native` and `make bench` build them
# as they are meant to run.
NATIVE_BENCH_OPT :=
# The examples: `make native`, `make bench` and `make demo` build them at -march=native. `make test` builds
# and runs them in the dispatch build alone (replay_parity, redis_host), where the Python module is: their
# three translation units took a fifth of the native build's compile time (105 of 480 s).
NATIVE_EXAMPLES := ON
# The dispatch build: no -m flags at all; every kernel is compiled per SIMD target and chosen at run time.
DISPATCH_FLAGS := -O2
# -g1 (line tables): reports keep file:line; full -g made the sanitizer builds about a quarter slower.
# -Og: half the compile time of -O1 under the sanitizers (test_model.cpp 76 -> 40 s), the tests about a
# third slower; make test-sanitize 400 -> 268 s.
SAN_FLAGS := -Og -g1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
# Catch2's runner (tests/CMakeLists.txt) at the build's own -Og: under ASan/UBSan, -O1 took 106 s to
# compile it, -Og 56 s. Under ThreadSanitizer at -O0: 13 s against 41 at -O1, for four assertions.
SAN_RUNNER_OPT :=
TSAN_RUNNER_OPT := -O0
TSAN_FLAGS := -O1 -g1 -fno-omit-frame-pointer -fsanitize=thread
# The test cases that share a model or a ranker across threads (Catch2 name patterns).
TSAN_TESTS := "*thread*"

.PHONY: all deps deps-bench demo evaluation precision-eval simulation fusion-eval test bench bench-dispatch clean native dispatch sanitize \
        test-native test-dispatch test-sanitize tsan test-tsan test-package

all: native

deps:
	@scripts/ensure-deps.sh $(BUILD_DEBS) $(PY_DEBS) $(FUZZ_DEBS) $(REDIS_DEBS)

# LibTorch and oneDNN: the baselines bench_model compares poem's forward pass and tower with. Debian's
# oneDNN is built with its OpenCL runtime: its CMake config needs the OpenCL headers (a recommends).
deps-bench: deps
	@scripts/ensure-deps.sh $(TORCH_DEBS) libdnnl-dev ocl-icd-opencl-dev

# configure-and-build <dir> <flags> <extra cmake args>
define build_flavour
	cmake -S . -B build/$(1) $(CMAKE_COMMON) -DCMAKE_CXX_FLAGS="$(2)" $(3) > build/$(1).configure.log \
	  || { cat build/$(1).configure.log; exit 1; }
	cmake --build build/$(1) -j $(JOBS)
endef

# Header-only at -march=native: what a service built for its own machines gets (tests, benches, examples).
native: deps
	@mkdir -p build
	$(call build_flavour,native,$(NATIVE_FLAGS),$(NATIVE_CMAKE) -DPOEM_BENCH_COMPILE_OPTIONS=$(NATIVE_BENCH_OPT) -DPOEM_BUILD_EXAMPLES=$(NATIVE_EXAMPLES))

# Runtime dispatch at baseline flags (POEM_DISPATCH=ON): tests (rerun on every SIMD target), examples and
# the Python module. POEM_BUILD_BENCH=ON only for `make bench`. The test binaries and the examples (which
# the tests run: replay_parity, redis_host) at -O1: the kernels they run on each target are the dispatch
# library's, compiled at -O2 whatever the flags, and -O1 takes a quarter to a third less time to compile
# them (the native build keeps its tests at -O2; `make demo` builds its example at -O2 -march=native).
# The Python module stays at -O2: it is what `pip install` builds and ships (the package's compile reuses
# these objects through ccache).
DISPATCH_BENCH ?= OFF
DISPATCH_TEST_OPT := -O1
dispatch: deps
	@mkdir -p build
	$(call build_flavour,dispatch,$(DISPATCH_FLAGS),-DPOEM_DISPATCH=ON -DPOEM_BUILD_BENCH=$(DISPATCH_BENCH) -DPOEM_TEST_COMPILE_OPTIONS=$(DISPATCH_TEST_OPT) -DPOEM_EXAMPLE_COMPILE_OPTIONS=$(DISPATCH_TEST_OPT))

sanitize: deps
	@mkdir -p build
	$(call build_flavour,sanitize,$(SAN_FLAGS),-DPOEM_BUILD_BENCH=OFF -DPOEM_BUILD_EXAMPLES=OFF -DPOEM_BUILD_PYTHON=OFF \
	  -DPOEM_TEST_RUNNER_COMPILE_OPTIONS=$(SAN_RUNNER_OPT))

# ThreadSanitizer (clang): only the test binaries with threads (tests/CMakeLists.txt's thread_tests), only
# their thread test cases.
tsan: deps
	@mkdir -p build
	cmake -S . -B build/tsan $(CMAKE_COMMON) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS="$(TSAN_FLAGS)" \
	  -DPOEM_BUILD_BENCH=OFF -DPOEM_BUILD_EXAMPLES=OFF -DPOEM_BUILD_PYTHON=OFF -DPOEM_INSTALL=OFF \
	  -DPOEM_TEST_RUNNER_COMPILE_OPTIONS=$(TSAN_RUNNER_OPT) > build/tsan.configure.log || { cat build/tsan.configure.log; exit 1; }
	cmake --build build/tsan -j $(JOBS) --target thread_tests

test-native: NATIVE_BENCH_OPT := -O0
test-native: NATIVE_EXAMPLES := OFF
test-native: native
	cd build/native && ctest --output-on-failure -j $(JOBS)

# The consumer tests already ran in the native build; here every test binary runs on every target.
test-dispatch: dispatch
	@scripts/local-openblas.sh > /dev/null
	cd build/dispatch && ctest --output-on-failure -j $(JOBS) -E '^consumer_'

test-sanitize: sanitize
	cd build/sanitize && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -E '^consumer_'

test-tsan: tsan
	@for t in test_serve test_model; do \
	  echo "== $$t (ThreadSanitizer) $(TSAN_TESTS)"; \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" build/tsan/tests/$$t $(TSAN_TESTS) || exit 1; \
	done

# The Python package as a user installs it (docs/python_package.md): a fresh venv, pip install . offline,
# the binding tests against the installed module, pip wheel.
test-package: deps
	PYTHON=$(PYTHON) JOBS=$(JOBS) scripts/test-package.sh build/package

# The whole suite in four builds, the Python package and the fuzzers; any failure fails the command.
test: test-native test-dispatch test-sanitize test-tsan test-package
	@echo "poem: all test builds passed (native, dispatch on every SIMD target, sanitize, tsan, the Python package)"

# Replays the shipped KuaiRand requests through the C++ serving path with the shipped model; builds
# only the demo, so a fresh machine gets there in about a minute once the packages are in.
demo: deps
	@mkdir -p build
	cmake -S . -B build/native $(CMAKE_COMMON) -DCMAKE_CXX_FLAGS="$(NATIVE_FLAGS)" -DPOEM_BUILD_EXAMPLES=ON \
	  > build/native.configure.log || { cat build/native.configure.log; exit 1; }
	cmake --build build/native -j $(JOBS) --target replay_requests
	build/native/examples/replay_requests data/kuairand_sample

# The KuaiRand evaluation (docs/evaluation.md): table, plots, and the demo's sample and model.
evaluation: dispatch
	LD_LIBRARY_PATH=$$(scripts/local-openblas.sh) PYTHONPATH=build/dispatch/python:python \
	  $(PYTHON) -m poem_eval.run --export-sample data/kuairand_sample

# What bf16 precision costs the demo model on the full test days (docs/model.md, "Precision").
precision-eval: dispatch
	LD_LIBRARY_PATH=$$(scripts/local-openblas.sh) PYTHONPATH=build/dispatch/python:python \
	  $(PYTHON) -m poem_eval.precision --json docs/model_precision.json --plot docs/model_precision.png

# The KuaiRand-grounded simulation of POEM's mechanism (docs/simulation.md): table, plot, results.
simulation: dispatch
	LD_LIBRARY_PATH=$$(scripts/local-openblas.sh) PYTHONPATH=build/dispatch/python:python \
	  $(PYTHON) -m poem_eval.simulation

# Learned fusion on KuaiRand (docs/fusion_learning.md): hand weights, a weight search, BCE, HarmonRank,
# Pantheon; IPPO's front; POEM on each fusion's inputs. Table, plot, results.
fusion-eval: dispatch
	LD_LIBRARY_PATH=$$(scripts/local-openblas.sh) PYTHONPATH=build/dispatch/python:python \
	  $(PYTHON) -m poem_eval.fusion_eval

bench: deps-bench
	@mkdir -p build
	$(call build_flavour,native,$(NATIVE_FLAGS),$(NATIVE_CMAKE) -DPOEM_BENCH_COMPILE_OPTIONS= -DPOEM_BUILD_EXAMPLES=ON)
	@mkdir -p build/bench-results
	@blas_dir=$$(scripts/local-openblas.sh); blas=$$(scripts/blas-name.sh "$$blas_dir"); \
	if [ -n "$$blas_dir" ]; then export LD_LIBRARY_PATH=$$blas_dir$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}; fi; \
	echo "poem: LibTorch runs on $$blas, one thread (bench_model's context libtorch_blas says what it loaded)"; \
	for b in build/native/bench/bench_*; do \
	  name=$$(basename $$b); echo "== $$name"; \
	  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $$b --benchmark_context=blas=$$blas \
	    --benchmark_out=build/bench-results/$$name.json --benchmark_out_format=json $(BENCH_ARGS) || exit 1; \
	done
	@$(MAKE) --no-print-directory bench-dispatch
	@echo "poem: benchmark results in build/bench-results/"

# The dispatch build (no -m flags) against the -march=native one on the benchmarks the dispatch issue
# names, run alternately in one session; prints and writes build/bench-results/dispatch_ratios.md.
DISPATCH_BENCH_FILTER := ^BM_(fusion_sort_keys/N:(100|1000)|fusion_fuse/K:4/N:(100|1000)|fusion_rank/K:4/N:(100|1000)|order_pareto/N:2000/K:3/correlated:0|model_predict/(100|1000))$$
bench-dispatch: deps-bench
	@mkdir -p build/bench-results
	$(call build_flavour,native,$(NATIVE_FLAGS),$(NATIVE_CMAKE) -DPOEM_BENCH_COMPILE_OPTIONS= -DPOEM_BUILD_EXAMPLES=ON)
	$(MAKE) --no-print-directory dispatch DISPATCH_BENCH=ON
	OPENBLAS_NUM_THREADS=1 $(PYTHON) scripts/dispatch_ratios.py --filter '$(DISPATCH_BENCH_FILTER)' \
	  --native build/native/bench --dispatch build/dispatch/bench --out build/bench-results/dispatch_ratios

clean:
	rm -rf build _skbuild dist

# ---- model (issue 5): golden fixtures from PyTorch -------------------------------------------------
# `make test` first regenerates tests/fixtures/model/ with PyTorch (the committed fixtures are what a
# machine without PyTorch tests against).
MODEL_FIXTURES := tests/fixtures/model

.PHONY: model-golden fuzz fuzz-model fuzz-corpus

model-golden: deps
	@if $(PYTHON) -c 'import torch' 2>/dev/null; then \
	  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PYTHON) python/tools/make_golden.py $(MODEL_FIXTURES); \
	else echo "poem: no PyTorch for $(PYTHON): testing against the committed model fixtures"; fi

# ---- fuzzing: one libFuzzer target per reader of outside bytes or text (fuzz/, docs/reliability.md) ---
# For each target: replay fuzz/regressions/<target>/ (inputs that once failed), then fuzz for
# FUZZ_SECONDS from the committed seeds fuzz/corpus/<target>/ plus the working corpus
# build/fuzz/corpus/<target>/ (kept between runs). Crashes land in build/fuzz/crash-*; one longer run:
#   make fuzz FUZZ_TARGETS=fuzz_state FUZZ_SECONDS=3600
FUZZ_SECONDS ?= 10
FUZZ_ALL := fuzz_safetensors fuzz_model_config fuzz_ranker_config fuzz_state fuzz_user_history fuzz_item_graph
FUZZ_TARGETS ?= $(FUZZ_ALL)
# All of them: one goal, fuzz_all, so the targets compile in parallel (CMake's top-level Makefile runs
# several --target goals one after another).
FUZZ_BUILD := $(if $(subst $(FUZZ_ALL),,$(FUZZ_TARGETS)),$(FUZZ_TARGETS),fuzz_all)
# -max_len: large for the text readers (deep nesting needs room), smaller for the binary records.
FUZZ_MAX_LEN_TEXT ?= 262144
FUZZ_MAX_LEN_BINARY ?= 65536
FUZZ_CONFIGURE := cmake -S . -B build/fuzz $(CMAKE_COMMON) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS="-O1 -g1" \
	  -DPOEM_BUILD_FUZZ=ON -DPOEM_BUILD_TESTS=OFF -DPOEM_BUILD_BENCH=OFF -DPOEM_BUILD_EXAMPLES=OFF \
	  -DPOEM_BUILD_PYTHON=OFF -DPOEM_INSTALL=OFF > build/fuzz.configure.log || { cat build/fuzz.configure.log; exit 1; }

fuzz: deps
	@mkdir -p build/fuzz
	$(FUZZ_CONFIGURE)
	cmake --build build/fuzz -j $(JOBS) --target $(FUZZ_BUILD)
	@mkdir -p build/fuzz/corpus/fuzz_safetensors
	@cp $(MODEL_FIXTURES)/small_*.safetensors $(MODEL_FIXTURES)/chrono_f32.safetensors build/fuzz/corpus/fuzz_safetensors/
	@$(MAKE) --no-print-directory -j $(JOBS) $(addprefix fuzz-run-,$(FUZZ_TARGETS))

# One target: replay its regressions, then fuzz it (`make fuzz` runs $(JOBS) of these at a time).
fuzz-run-%:
	@t=$*; bin=build/fuzz/fuzz/$$t; log=build/fuzz/$$t.log; mkdir -p build/fuzz/corpus/$$t; \
	  regs=$$(find fuzz/regressions/$$t -type f 2>/dev/null | sort); \
	  if [ -n "$$regs" ]; then \
	    $$bin -timeout=10 $$regs > $$log.replay 2>&1 || { tail -40 $$log.replay; echo "poem: $$t: a regression input fails"; exit 1; }; \
	    echo "poem: $$t: $$(echo $$regs | wc -w) regression inputs pass"; \
	  fi; \
	  case $$t in fuzz_state|fuzz_user_history|fuzz_item_graph) ml=$(FUZZ_MAX_LEN_BINARY);; *) ml=$(FUZZ_MAX_LEN_TEXT);; esac; \
	  seeds=; [ -d fuzz/corpus/$$t ] && seeds=fuzz/corpus/$$t; \
	  $$bin -max_total_time=$(FUZZ_SECONDS) -max_len=$$ml -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus/$$t $$seeds > $$log 2>&1 \
	    || { tail -60 $$log; echo "poem: $$t failed; the input is in build/fuzz/ (add it to fuzz/regressions/$$t/ once fixed)"; exit 1; }; \
	  echo "poem: $$t: $$(grep -E 'Done [0-9]+ runs' $$log)"

# The model reader alone (the former name of the safetensors fuzzing).
fuzz-model:
	@$(MAKE) --no-print-directory fuzz FUZZ_TARGETS=fuzz_safetensors

# Rewrites fuzz/corpus/ and the generated fuzz/regressions/*/gen_* with poem's own serialisers.
fuzz-corpus: deps
	@mkdir -p build/fuzz
	$(FUZZ_CONFIGURE)
	cmake --build build/fuzz -j $(JOBS) --target fuzz_make_corpus
	build/fuzz/fuzz/fuzz_make_corpus .

test-native test-dispatch test-sanitize: model-golden
test: fuzz
# ---- end of the model and fuzzing blocks -------------------------------------------------------------
