#pragma once
// Software prefetch: a hint that memory will be read soon, so that its cache misses overlap with work
// done meanwhile. Without GCC's or Clang's builtin it is a no-op.

#include <cstddef>

#if defined(__GNUC__) || defined(__clang__)
#define POEM_PREFETCH(addr) __builtin_prefetch(addr)
#else
#define POEM_PREFETCH(addr) ((void)0)
#endif

namespace poem::detail {

// Asks for the cache lines of [p, p + bytes) to come into L2 (not L1, which a computation in between
// would evict): for a block the caller reads after a long computation, such as the model's next chunk of
// rows.
inline void prefetch_l2(const void* p, std::size_t bytes) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    const char* c = static_cast<const char*>(p);
    for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 1);  // read, low locality: L2
#else
    (void)p;
    (void)bytes;
#endif
}

}  // namespace poem::detail
