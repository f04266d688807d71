# poem_add_dispatch_library(<name> <source_dir>): a static library with poem's kernels compiled once
# per SIMD target and the runtime selection (docs/dispatch.md). Linking it defines POEM_DISPATCH for the
# consumer, whose kernel calls then go through the table of the target chosen at startup.
#
# Each target's copy is compiled with its own flags, after the consumer's (so a global -march=native
# cannot leak into the baseline copy: -march=x86-64 resets the instruction set first; no FMA
# contraction, so every target's scalar code rounds alike), and in its own
# namespace (POEM_TARGET_NAMESPACE), so the linker never merges two targets' inline functions.
# Targets: scalar everywhere; sse2, avx2 (+FMA), avx512 (F, CD, DQ, BW, VL), avx512bf16 (avx512 and
# AVX512_BF16: the vdpbf16ps bf16 GEMM) and amx (avx512bf16 and AMX-TILE/AMX-BF16: the bf16 GEMM on
# tiles) on x86-64 with GCC or Clang (the last two where the compiler has their flags).
function(poem_add_dispatch_library name source_dir)
  set(targets scalar)
  set(flags_scalar "")
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$" AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    list(APPEND targets sse2 avx2 avx512)
    include(CheckCXXCompilerFlag)
    check_cxx_compiler_flag(-mavx512bf16 POEM_COMPILER_HAS_AVX512BF16)
    if(POEM_COMPILER_HAS_AVX512BF16)
      list(APPEND targets avx512bf16)
      check_cxx_compiler_flag("-mamx-tile -mamx-bf16" POEM_COMPILER_HAS_AMX)
      if(POEM_COMPILER_HAS_AMX)
        list(APPEND targets amx)
      endif()
    endif()
    # -ffp-contract=off: a scalar tail compiled in the avx2 copy must round like the baseline reference
    # (a contracted a * b + c is one rounding, not two); the kernels' FMAs are explicit (fmadd).
    # -O2 whatever the consumer's level: the kernels are the hot code, and xsimd 8.1's AVX-512BW integer
    # select only compiles with the optimised (inline-function) forms of its intrinsics.
    set(base -O2 -march=x86-64 -mtune=generic -ffp-contract=off)
    set(flags_scalar ${base})
    set(flags_sse2 ${base})
    set(flags_avx2 ${base} -mavx2 -mfma)
    set(flags_avx512 ${base} -mavx2 -mfma -mavx512f -mavx512cd -mavx512dq -mavx512bw -mavx512vl)
    set(flags_avx512bf16 ${flags_avx512} -mavx512bf16)
    set(flags_amx ${flags_avx512bf16} -mamx-tile -mamx-bf16)
    set(defs_amx POEM_AMX)  # model/detail/gemm_amx.hpp
  endif()
  # POEM_DISPATCH_TARGETS (names separated by "," or ";"; empty: all of the above): compile only these,
  # and scalar. Compile time: each target is one more copy of every kernel, and a fleet without AVX-512
  # needs none of its three. A name this compiler has no target for is an error.
  if(POEM_DISPATCH_TARGETS)
    string(REPLACE "," ";" wanted "${POEM_DISPATCH_TARGETS}")
    foreach(w ${wanted})
      if(NOT w IN_LIST targets)
        message(FATAL_ERROR "poem: POEM_DISPATCH_TARGETS names \"${w}\", not a dispatch target of this "
                            "compiler (${targets})")
      endif()
    endforeach()
    set(kept scalar)
    foreach(t ${targets})
      if(NOT t STREQUAL "scalar" AND t IN_LIST wanted)
        list(APPEND kept ${t})
      endif()
    endforeach()
    set(targets ${kept})
  endif()
  set(objects "")
  set(has "")
  foreach(t ${targets})
    add_library(${name}_${t} OBJECT EXCLUDE_FROM_ALL ${source_dir}/target.cpp)
    target_link_libraries(${name}_${t} PRIVATE poem::poem)
    target_compile_features(${name}_${t} PRIVATE cxx_std_17)
    target_compile_definitions(${name}_${t} PRIVATE POEM_DISPATCH_TARGET=${t} POEM_TARGET_NAMESPACE=target_${t}
                               ${defs_${t}})
    target_compile_options(${name}_${t} PRIVATE ${flags_${t}})
    set_target_properties(${name}_${t} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    list(APPEND objects $<TARGET_OBJECTS:${name}_${t}>)
    if(NOT t STREQUAL "scalar")
      string(TOUPPER ${t} T)
      list(APPEND has POEM_DISPATCH_HAS_${T})
    endif()
  endforeach()
  add_library(${name} STATIC EXCLUDE_FROM_ALL ${source_dir}/select.cpp ${objects})
  target_link_libraries(${name} PUBLIC poem::poem)
  target_compile_definitions(${name} PUBLIC POEM_DISPATCH PRIVATE ${has} POEM_TARGET_NAMESPACE=target_select)
  target_compile_options(${name} PRIVATE ${flags_scalar})
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON POEM_DISPATCH_TARGETS "${targets}")
endfunction()
