#pragma once
// Software prefetch: a hint that memory will be read soon, so that its cache misses overlap with work
// done meanwhile. Without GCC's or Clang's builtin it is a no-op.

#include <cstddef>

#if defined(__GNUC__) || defined(__clang__)
#define POEM_PREFETCH(addr) __builtin_prefetch(addr)
#define POEM_PREFETCH_L2(addr) __builtin_prefetch(addr, 0, 1)
#else
#define POEM_PREFETCH(addr) ((void)0)
#define POEM_PREFETCH_L2(addr) ((void)0)
#endif

namespace poem::detail {

// Asks for the cache lines of [p, p + bytes) to come into L2 (not L1, which a computation in between
// would evict): for a block the caller reads after a long computation, such as the model's next chunk of
// rows.
inline void prefetch_l2(const void* p, std::size_t bytes) noexcept {
    const char* c = static_cast<const char*>(p);
    for (std::size_t o = 0; o < bytes; o += 64) POEM_PREFETCH_L2(c + o);
}

}  // namespace poem::detail
