#pragma once
// Which instruction set runs poem's kernels, by name: "amx", "avx512bf16", "avx512", "avx2", "sse2" or
// "scalar" (avx512bf16: avx512 whose bf16 GEMM runs vdpbf16ps, model/detail/gemm_bf16.hpp; amx: the bf16
// GEMM on AMX tiles, model/detail/gemm_amx.hpp, runtime dispatch only).
//
// Header-only (the default): the consumer's compiler flags choose the kernels once, at compile time
// (poem::simd_arch; POEM_FORCE_SCALAR: the scalar references), and simd_target() names that choice.
//
// Runtime dispatch (link the CMake target poem::dispatch, which defines POEM_DISPATCH; docs/dispatch.md):
// every kernel is compiled for each target in one binary and the best target this CPU supports is
// chosen once, at startup, by CPUID (and the OS's register-state support). The environment variable
// POEM_SIMD=amx|avx512bf16|avx512|avx2|sse2|scalar overrides the choice; a value that is not a target of
// the build, or one this CPU cannot run, is refused: the kernels fall back to the baseline target
// (sse2), a line goes to stderr, and simd_target() throws poem::error naming the variable, until
// set_simd_target() is called.
// A call costs one relaxed atomic load and an indirect call per kernel (a kernel covers a whole request).

#include <string>
#include <type_traits>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/simd.hpp"

namespace poem {

#ifdef POEM_DISPATCH

// The target the kernels run now. Throws poem::error if POEM_SIMD named one that cannot run.
const char* simd_target();
// Runs the kernels of `name` from now on (tests, cautious operators). Call it before serving: a kernel
// already running finishes on the target it started with. Throws poem::error for a name that is not a
// target of this build or one this CPU does not support.
void set_simd_target(const std::string& name);
// The targets of this build that this CPU runs, best first (the last is "scalar").
std::vector<std::string> simd_targets();

#else

namespace detail {
template <class Arch>
constexpr const char* simd_target_name() noexcept {
    if constexpr (!use_simd) return "scalar";
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#if POEM_VDPBF16PS
    else if constexpr (std::is_base_of<xsimd::avx512dq, Arch>::value) return "avx512bf16";
#endif
    else if constexpr (std::is_base_of<xsimd::avx512dq, Arch>::value) return "avx512";  // avx512dq (simd.hpp) or above
    else if constexpr (std::is_same<xsimd::fma3<xsimd::avx2>, Arch>::value) return "avx2";
    else if constexpr (std::is_same<xsimd::sse2, Arch>::value) return "sse2";
#endif
    else return Arch::name();  // another arch the flags chose: xsimd's name for it
}
}  // namespace detail

inline const char* simd_target() { return detail::simd_target_name<simd_arch>(); }

inline void set_simd_target(const std::string& name) {
    check(name == simd_target(), "set_simd_target(\"", detail::clip(name), "\"): this build has no runtime dispatch ",
          "(link poem::dispatch); its kernels are fixed at compile time: ", simd_target());
}

inline std::vector<std::string> simd_targets() { return {simd_target()}; }

#endif

}  // namespace poem
