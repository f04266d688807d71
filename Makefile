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

.PHONY: all deps deps-bench demo test bench clean native baseline sanitize \
        test-native test-baseline test-sanitize

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

test-native: native
	cd build/native && ctest --output-on-failure -j $(JOBS)

test-baseline: baseline
	cd build/baseline && ctest --output-on-failure -j $(JOBS)

test-sanitize: sanitize
	cd build/sanitize && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -E '^consumer_'

# The whole suite in three builds; any failure fails the command.
test: test-native test-baseline test-sanitize
	@echo "poem: all test builds passed (native, baseline, sanitize)"

demo: native
	build/native/examples/fuse_request data/sample_request.csv

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
