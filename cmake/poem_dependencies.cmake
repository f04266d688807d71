# Dependencies: Debian's packages through find_package; FetchContent only when POEM_FETCH_DEPS asks.
include(FetchContent)

macro(poem_find_or_fetch name url tag)
  find_package(${name} ${ARGN} QUIET)
  if(NOT ${name}_FOUND)
    if(NOT POEM_FETCH_DEPS)
      message(FATAL_ERROR "poem: ${name} not found. Install it (Debian: xtl-dev libxsimd-dev xtensor-dev "
                          "nlohmann-json3-dev) or configure with -DPOEM_FETCH_DEPS=ON.")
    endif()
    message(STATUS "poem: fetching ${name} ${tag}")
    FetchContent_Declare(${name} GIT_REPOSITORY ${url} GIT_TAG ${tag} GIT_SHALLOW TRUE)
    FetchContent_MakeAvailable(${name})
  endif()
endmacro()

# xtl must come before xsimd and xtensor, whose package configs look for it.
poem_find_or_fetch(xtl https://github.com/xtensor-stack/xtl.git 0.7.2)
poem_find_or_fetch(xsimd https://github.com/xtensor-stack/xsimd.git 8.1.0)
poem_find_or_fetch(nlohmann_json https://github.com/nlohmann/json.git v3.11.2)

# xtensor is for poem::xtensor (poem/fusion/xtensor.hpp) only: required when poem's own tests use it
# or when it is to be installed, optional for a parent project that consumes poem::poem alone.
if(POEM_BUILD_TESTS OR POEM_INSTALL OR POEM_FETCH_DEPS)
  poem_find_or_fetch(xtensor https://github.com/xtensor-stack/xtensor.git 0.24.3)
else()
  find_package(xtensor QUIET)
endif()
