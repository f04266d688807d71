#pragma once
// Shared by every benchmark binary: names the CPU and the SIMD arch in the JSON context, and keeps a
// rotating set of inputs so that no benchmark sees the same input twice in a row.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "poem/core/dispatch.hpp"

namespace poem_bench {

inline std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
    return "unknown";
}

#ifdef POEM_BENCH_COMPILE_CHECK
// Built with extra options (make test compiles the benches at -O0 to check that they build): such a
// binary's times would mislead, so it refuses to run.
inline const bool refuse_to_time = [] {
    std::fprintf(stderr, "poem: this benchmark binary was built as a compile check (POEM_BENCH_COMPILE_OPTIONS=%s); "
                         "`make bench` builds the ones to time\n", POEM_BENCH_COMPILE_CHECK);
    std::exit(2);
    return true;
}();
#endif

inline const bool context_added = [] {
    benchmark::AddCustomContext("cpu_model", cpu_model());
    benchmark::AddCustomContext("poem_simd_target", poem::simd_target());
    benchmark::AddCustomContext("poem_force_scalar", poem::use_simd ? "no" : "yes");
    const char* blas = std::getenv("OPENBLAS_NUM_THREADS");
    benchmark::AddCustomContext("OPENBLAS_NUM_THREADS", blas ? blas : "unset");
    return true;
}();

// Cycles through `count` inputs made by `make(i)`; next() returns a different one each call.
template <class T>
class rotating {
public:
    template <class Make>
    rotating(std::size_t count, Make make) {
        for (std::size_t i = 0; i < count; ++i) inputs_.push_back(make(i));
    }
    const T& next() noexcept {
        const T& x = inputs_[at_];
        at_ = at_ + 1 == inputs_.size() ? 0 : at_ + 1;
        return x;
    }

private:
    std::vector<T> inputs_;
    std::size_t at_ = 0;
};

}  // namespace poem_bench
