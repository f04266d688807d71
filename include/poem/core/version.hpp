#pragma once
// poem's version, as macros (for #if) and as a string.

#define POEM_VERSION_MAJOR 0
#define POEM_VERSION_MINOR 1
#define POEM_VERSION_PATCH 0
#define POEM_VERSION (POEM_VERSION_MAJOR * 10000 + POEM_VERSION_MINOR * 100 + POEM_VERSION_PATCH)
#define POEM_VERSION_STRING "0.1.0"
