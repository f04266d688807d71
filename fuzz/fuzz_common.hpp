#pragma once
// Helpers shared by the libFuzzer targets of poem's binary readers.
//
// The binary formats (POST, POUH, POEMGRPH) end in a CRC-32 of every byte before it: a fuzzer that
// mutates bytes would almost never get past that check. with_crc() rewrites the trailing checksum so the
// reader's later checks (structure, counts, values) are reached; the harnesses also feed the bytes as
// they are, so the checksum check itself is fuzzed too.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "poem/core/codec.hpp"

namespace poem_fuzz {

inline void put_u32le(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

inline std::uint32_t get_u32le(const std::uint8_t* p) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
    return v;
}

// Rewrites the last 4 bytes of b[at, at + n) as the CRC-32 of the bytes before them (n >= 4).
inline void fix_crc(std::vector<std::uint8_t>& b, std::size_t at, std::size_t n) {
    if (n < 4 || at + n > b.size()) return;
    put_u32le(b.data() + at + n - 4, poem::crc32(b.data() + at, n - 4));
}

inline std::vector<std::uint8_t> with_crc(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> b(data, data + size);
    fix_crc(b, 0, b.size());
    return b;
}

// Runs `one` on the bytes as they are (the checksum check) and with a valid trailing checksum
// (everything behind it): the body of every binary target whose format ends in one CRC-32.
template <class One>
void as_is_and_with_crc(const std::uint8_t* data, std::size_t size, One one) {
    one(std::vector<std::uint8_t>(data, data + size));
    one(with_crc(data, size));
}

// A check that holds in every build (the fuzz targets may be built with NDEBUG).
[[noreturn]] inline void fail(const char* what) {
    std::fprintf(stderr, "poem fuzz: %s\n", what);
    std::abort();
}

}  // namespace poem_fuzz
