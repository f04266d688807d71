#pragma once
// The namespace of code compiled per instruction set. Runtime dispatch (core/dispatch.hpp,
// docs/dispatch.md) compiles the kernels once per instruction set in one binary. Every kernel
// function, and every function a kernel table reaches, therefore lives in the inline namespace
// POEM_TARGET_NAMESPACE, which the dispatch library sets per target (`target_avx2`, ...): two
// targets' copies of an inline kernel have different symbols, so the linker can never keep the
// AVX-512 copy for the SSE2 caller.
// A translation unit outside the dispatch library gets a name from its own flags (`target_native_avx2`,
// ..., `target_native_scalar` under POEM_FORCE_SCALAR), so header-only translation units built with
// different instruction sets in one program do not share kernel symbols either. A header that only
// needs the name includes this one, not core/simd.hpp (xsimd).

#ifndef POEM_TARGET_NAMESPACE
#if defined(POEM_FORCE_SCALAR)
#define POEM_TARGET_NAMESPACE target_native_scalar
#elif defined(__AVX512BW__) && defined(__AVX512BF16__)
#define POEM_TARGET_NAMESPACE target_native_avx512bf16
#elif defined(__AVX512BW__)
#define POEM_TARGET_NAMESPACE target_native_avx512
#elif defined(__AVX2__) && defined(__FMA__)
#define POEM_TARGET_NAMESPACE target_native_avx2
#elif defined(__AVX__)
#define POEM_TARGET_NAMESPACE target_native_avx
#elif defined(__SSE4_2__)
#define POEM_TARGET_NAMESPACE target_native_sse42
#else
#define POEM_TARGET_NAMESPACE target_native
#endif
#endif
