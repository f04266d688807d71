# poem's two commands: `make demo` and `make test` (and `make bench`). Each installs what is missing,
# configures, builds and runs. Builds live under build/<flavour>.

SHELL := /bin/bash
JOBS ?= $(shell nproc)
PYTHON := /usr/bin/python3
CMAKE_COMMON := -DCMAKE_BUILD_TYPE= -DPOEM_FETCH_DEPS=OFF -DPython3_EXECUTABLE=$(PYTHON)

BUILD_DEBS := g++ make cmake xtl-dev libxsimd-dev xtensor-dev nlohmann-json3-dev catch2 libbenchmark-dev
PY_DEBS := python3 python3-dev python3-torch python3-numpy python3-pandas python3-matplotlib python3-tqdm pybind11-dev
FUZZ_DEBS := clang libclang-rt-14-dev libfuzzer-14-dev
TORCH_DEBS := libtorch-dev

NATIVE_FLAGS := -O2 -march=native
BASELINE_FLAGS := -O2
SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

.PHONY: all deps deps-bench demo evaluation test bench clean native baseline sanitize scalar \
        test-native test-baseline test-sanitize test-scalar

all: native

deps:
	@scripts/ensure-deps.sh $(BUILD_DEBS) $(PY_DEBS) $(FUZZ_DEBS)

deps-bench: deps
	@scripts/ensure-deps.sh $(TORCH_DEBS)

# configure-and-build <dir> <flags> <extra cmake args>
define build_flavour
	cmake -S . -B build/$(1) $(CMAKE_COMMON) -DCMAKE_CXX_FLAGS="$(2)" $(3) > build/$(1).configure.log \
	  || { cat build/$(1).configure.log; exit 1; }
	cmake --build build/$(1) -j $(JOBS)
endef

native: deps
	@mkdir -p build
	$(call build_flavour,native,$(NATIVE_FLAGS),)

baseline: deps
	@mkdir -p build
	$(call build_flavour,baseline,$(BASELINE_FLAGS),-DPOEM_BUILD_BENCH=OFF -DPOEM_BUILD_PYTHON=OFF)

sanitize: deps
	@mkdir -p build
	$(call build_flavour,sanitize,$(SAN_FLAGS),-DPOEM_BUILD_BENCH=OFF -DPOEM_BUILD_EXAMPLES=OFF -DPOEM_BUILD_PYTHON=OFF)

# The scalar reference of every kernel (POEM_FORCE_SCALAR) at the native flags: the tests only.
scalar: deps
	@mkdir -p build
	$(call build_flavour,scalar,$(NATIVE_FLAGS),-DPOEM_FORCE_SCALAR=ON -DPOEM_BUILD_BENCH=OFF -DPOEM_BUILD_EXAMPLES=OFF -DPOEM_BUILD_PYTHON=OFF -DPOEM_INSTALL=OFF)

test-native: native
	@scripts/local-openblas.sh > /dev/null
	cd build/native && ctest --output-on-failure -j $(JOBS)

test-baseline: baseline
	cd build/baseline && ctest --output-on-failure -j $(JOBS)

test-sanitize: sanitize
	cd build/sanitize && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -E '^consumer_'

test-scalar: scalar
	cd build/scalar && ctest --output-on-failure -j $(JOBS) -E '^consumer_'

# The whole suite in four builds; any failure fails the command.
test: test-native test-baseline test-sanitize test-scalar
	@echo "poem: all test builds passed (native, baseline, sanitize, scalar)"

# Replays the shipped KuaiRand requests through the C++ serving path with the shipped model; builds
# only the demo, so a fresh machine gets there in about a minute once the packages are in.
demo: deps
	@mkdir -p build
	cmake -S . -B build/native $(CMAKE_COMMON) -DCMAKE_CXX_FLAGS="$(NATIVE_FLAGS)" > build/native.configure.log \
	  || { cat build/native.configure.log; exit 1; }
	cmake --build build/native -j $(JOBS) --target replay_requests
	build/native/examples/replay_requests data/kuairand_sample

# The KuaiRand evaluation (docs/evaluation.md): table, plots, and the demo's sample and model.
evaluation: native
	LD_LIBRARY_PATH=$$(scripts/local-openblas.sh) PYTHONPATH=build/native/python:python \
	  $(PYTHON) -m poem_eval.run --export-sample data/kuairand_sample

bench: deps-bench
	@mkdir -p build
	$(call build_flavour,native,$(NATIVE_FLAGS),)
	@mkdir -p build/bench-results
	@for b in build/native/bench/bench_*; do \
	  name=$$(basename $$b); echo "== $$name"; \
	  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $$b --benchmark_out=build/bench-results/$$name.json \
	    --benchmark_out_format=json $(BENCH_ARGS) || exit 1; \
	done
	@echo "poem: benchmark results in build/bench-results/"

clean:
	rm -rf build

# ---- model (issue 5): golden fixtures from PyTorch, and the safetensors fuzzer ----------------------
# `make test` first regenerates tests/fixtures/model/ with PyTorch (the committed fixtures are what a
# machine without PyTorch tests against), and after the four test builds fuzzes the safetensors reader
# for FUZZ_SECONDS with clang's libFuzzer (build/fuzz).
FUZZ_SECONDS ?= 60
MODEL_FIXTURES := tests/fixtures/model

.PHONY: model-golden fuzz-model

model-golden: deps
	@if $(PYTHON) -c 'import torch' 2>/dev/null; then \
	  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PYTHON) python/tools/make_golden.py $(MODEL_FIXTURES); \
	else echo "poem: no PyTorch for $(PYTHON): testing against the committed model fixtures"; fi

fuzz-model: deps
	@mkdir -p build/fuzz/corpus
	cmake -S . -B build/fuzz $(CMAKE_COMMON) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS="-O1 -g" \
	  -DPOEM_BUILD_FUZZ=ON -DPOEM_BUILD_TESTS=OFF -DPOEM_BUILD_BENCH=OFF -DPOEM_BUILD_EXAMPLES=OFF \
	  -DPOEM_BUILD_PYTHON=OFF -DPOEM_INSTALL=OFF > build/fuzz.configure.log || { cat build/fuzz.configure.log; exit 1; }
	cmake --build build/fuzz -j $(JOBS) --target fuzz_safetensors
	cp $(MODEL_FIXTURES)/small_*.safetensors $(MODEL_FIXTURES)/chrono_f32.safetensors build/fuzz/corpus/
	build/fuzz/fuzz/fuzz_safetensors -max_total_time=$(FUZZ_SECONDS) -max_len=131072 -print_final_stats=1 \
	  -artifact_prefix=build/fuzz/ build/fuzz/corpus 2> build/fuzz/fuzz.log \
	  || { tail -60 build/fuzz/fuzz.log; exit 1; }
	@grep -E 'Done [0-9]+ runs' build/fuzz/fuzz.log | sed 's/^/poem: fuzz_safetensors: /'

test-native test-baseline test-sanitize test-scalar: model-golden
test: fuzz-model
# ---- end of the model block ---------------------------------------------------------------------------
