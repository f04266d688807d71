#pragma once
// poem's version, as macros (for #if) and as a string built from them. Keep in step with project(VERSION)
// in CMakeLists.txt (tests/test_core.cpp checks).

#define POEM_VERSION_MAJOR 0
#define POEM_VERSION_MINOR 1
#define POEM_VERSION_PATCH 0
#define POEM_VERSION (POEM_VERSION_MAJOR * 10000 + POEM_VERSION_MINOR * 100 + POEM_VERSION_PATCH)

#define POEM_DETAIL_STR(x) #x
#define POEM_DETAIL_XSTR(x) POEM_DETAIL_STR(x)
#define POEM_VERSION_STRING \
    POEM_DETAIL_XSTR(POEM_VERSION_MAJOR) "." POEM_DETAIL_XSTR(POEM_VERSION_MINOR) "." POEM_DETAIL_XSTR(POEM_VERSION_PATCH)
