# bench_model: LibTorch beside poem's forward pass, when LibTorch is found (Debian: libtorch-dev).
# Defines POEM_HAVE_LIBTORCH and links ${TORCH_LIBRARIES}; without it the binary runs poem's side only.
if(TARGET bench_model)
  if(NOT Torch_DIR AND EXISTS /usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake)
    set(Torch_DIR /usr/lib/x86_64-linux-gnu/cmake/Torch CACHE PATH "LibTorch's CMake config")
  endif()
  find_package(Torch QUIET)
  if(Torch_FOUND)
    message(STATUS "poem: LibTorch ${Torch_VERSION} found, bench_model includes BM_model_predict_libtorch")
    target_link_libraries(bench_model PRIVATE ${TORCH_LIBRARIES})
    target_include_directories(bench_model SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
    target_compile_definitions(bench_model PRIVATE POEM_HAVE_LIBTORCH)
    if(TORCH_CXX_FLAGS)
      separate_arguments(_poem_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
      target_compile_options(bench_model PRIVATE ${_poem_torch_flags})
    endif()
  else()
    message(STATUS "poem: LibTorch not found, bench_model runs without BM_model_predict_libtorch")
  endif()
endif()

# bench_model: oneDNN's matmuls beside poem's tower, when oneDNN is found (Debian: libdnnl-dev; its
# CPU runtime is OpenMP, so the bench links OpenMP to set one thread). Defines POEM_HAVE_ONEDNN.
if(TARGET bench_model)
  # Debian's oneDNN is built with its OpenCL GPU runtime, and its config stops the whole configure
  # (find_package(OpenCL REQUIRED)) when the OpenCL headers are missing: look for them first.
  find_package(OpenCL QUIET)
  if(OpenCL_FOUND)
    find_package(dnnl QUIET CONFIG)
  endif()
  find_package(OpenMP QUIET COMPONENTS CXX)
  if(dnnl_FOUND AND TARGET DNNL::dnnl AND OpenMP_CXX_FOUND)
    message(STATUS "poem: oneDNN ${dnnl_VERSION} found, bench_model includes BM_model_mlp_onednn")
    target_link_libraries(bench_model PRIVATE DNNL::dnnl OpenMP::OpenMP_CXX)
    target_compile_definitions(bench_model PRIVATE POEM_HAVE_ONEDNN)
  else()
    message(STATUS "poem: oneDNN (or OpenMP, or the OpenCL headers its config needs) not found, "
                   "bench_model runs without BM_model_mlp_onednn")
  endif()
endif()
