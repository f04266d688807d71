#pragma once
// Bit-level helpers shared by the layers: a float's bits and back, and little-endian integers in
// byte buffers (poem's serialised formats are little-endian whatever the host).

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace poem::detail {

inline std::uint32_t float_bits(float x) noexcept {
    std::uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

inline float bits_float(std::uint32_t u) noexcept {
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

// Writes the low `bytes` bytes of v, least significant first; returns the end.
inline unsigned char* put_le(unsigned char* out, std::uint64_t v, int bytes) noexcept {
    for (int i = 0; i < bytes; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
    return out + bytes;
}

inline std::uint64_t get_le(const unsigned char* p, int bytes) noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
}

}  // namespace poem::detail
