#pragma once
// A small, fast, seedable generator: SplitMix64 (64-bit state, full 2^64 period, passes BigCrush).
// It is a <random> UniformRandomBitGenerator, and adds the few draws poem's samplers need, with
// results that are the same on every platform (unlike std::uniform_*_distribution).

#include <cstdint>
#include <limits>

namespace poem {

namespace detail {
// The 128-bit product of two 64-bit numbers (GCC and Clang; __extension__ keeps -Wpedantic quiet).
__extension__ typedef unsigned __int128 u128;
}  // namespace detail

// SplitMix64's finaliser (Stafford's variant 13): a bijective 64-bit mixer, the one copy of it in poem.
// rng() applies it to its state; the model hashes item ids with it (model/model.hpp, hash_row), as
// the PyTorch reference does.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

class rng {
public:
    using result_type = std::uint64_t;

    explicit constexpr rng(std::uint64_t seed = 0x9E3779B97F4A7C15ull) noexcept : state_(seed) {}

    static constexpr result_type min() noexcept { return 0; }
    static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

    constexpr result_type operator()() noexcept {
        return mix64(state_ += 0x9E3779B97F4A7C15ull);
    }

    // Uniform in [0, n) without modulo bias (Lemire's multiply-shift with rejection). n > 0.
    std::uint64_t below(std::uint64_t n) noexcept {
        detail::u128 m = static_cast<detail::u128>((*this)()) * n;
        auto low = static_cast<std::uint64_t>(m);
        if (low < n) {
            const std::uint64_t threshold = (0 - n) % n;
            while (low < threshold) {
                m = static_cast<detail::u128>((*this)()) * n;
                low = static_cast<std::uint64_t>(m);
            }
        }
        return static_cast<std::uint64_t>(m >> 64);
    }

    // Uniform float in [0, 1): the top 24 bits, so every value is exactly representable.
    float uniform_float() noexcept { return static_cast<float>((*this)() >> 40) * 0x1.0p-24f; }
    // Uniform double in [0, 1) from the top 53 bits.
    double uniform_double() noexcept { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

    // An independent stream for a sub-task (say, one per user), derived from this one's seed.
    constexpr rng fork(std::uint64_t stream) const noexcept {
        rng r(state_ ^ (stream * 0xD1B54A32D192ED03ull));
        r();
        return r;
    }

    constexpr std::uint64_t state() const noexcept { return state_; }

private:
    std::uint64_t state_;
};

}  // namespace poem
