#pragma once
// The dispatch library's view of every layer's kernels: one table per target (target.cpp defines one
// per compiled target, select.cpp activates one). Private to the dispatch library, the one place that
// sees all layers' kernels together.

#include "poem/core/kernels.hpp"
#include "poem/fusion/detail/kernels.hpp"
#include "poem/loss/detail/pairwise_kernels.hpp"
#include "poem/model/detail/kernels.hpp"

namespace poem::detail {

struct kernel_tables {
    core_kernels core;
    fusion_kernels fusion;
    model_kernels model;
    loss_kernels loss;
};

// One per target compiled into the library (target.cpp); kernel_tables_scalar always exists.
extern const kernel_tables kernel_tables_scalar;
extern const kernel_tables kernel_tables_sse2;
extern const kernel_tables kernel_tables_avx2;
extern const kernel_tables kernel_tables_avx512;
extern const kernel_tables kernel_tables_avx512bf16;
extern const kernel_tables kernel_tables_amx;

}  // namespace poem::detail
