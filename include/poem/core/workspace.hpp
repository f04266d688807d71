#pragma once
// Per-thread scratch memory that the caller owns and reuses across requests, so the hot path does not
// allocate once buffers have grown to the largest request seen. Not thread-safe: one per thread.
//
// Each layer asks for buffers by slot; slots of different layers never overlap (see the enum), and a
// call may use several slots at once. Memory is 64-byte aligned and uninitialised.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>

#include "poem/core/span.hpp"

namespace poem {

class workspace {
public:
    // Slots per layer; a layer may use any slot in its own range.
    enum slot : std::size_t {
        fusion_first = 0, fusion_last = 7,
        order_first = 8, order_last = 15,
        sample_first = 16, sample_last = 23,
        model_first = 24, model_last = 39,
        slot_count = 40
    };

    workspace() = default;
    workspace(const workspace&) = delete;
    workspace& operator=(const workspace&) = delete;
    workspace(workspace&&) noexcept = default;
    workspace& operator=(workspace&&) noexcept = default;

    // A buffer of at least `n` T in slot `s`; contents are unspecified (reused from earlier calls).
    template <class T>
    span<T> get(std::size_t s, std::size_t n) {
        static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                      "workspace holds trivial types only");
        check(s < slot_count, "workspace: slot ", s, " out of range");
        buffer& b = buffers_[s];
        const std::size_t bytes = n * sizeof(T);
        if (bytes > b.capacity) {
            const std::size_t cap = round_up(bytes > 2 * b.capacity ? bytes : 2 * b.capacity);
            void* p = std::aligned_alloc(alignment, cap);
            if (p == nullptr) throw std::bad_alloc();
            b.data.reset(static_cast<std::byte*>(p));
            b.capacity = cap;
        }
        return {reinterpret_cast<T*>(b.data.get()), n};
    }

    // Bytes held, all slots together.
    std::size_t capacity() const noexcept {
        std::size_t total = 0;
        for (const auto& b : buffers_) total += b.capacity;
        return total;
    }

private:
    static constexpr std::size_t alignment = 64;
    static std::size_t round_up(std::size_t bytes) noexcept {
        return (bytes + alignment - 1) / alignment * alignment;
    }
    struct free_deleter {
        void operator()(std::byte* p) const noexcept { std::free(p); }
    };
    struct buffer {
        std::unique_ptr<std::byte, free_deleter> data;
        std::size_t capacity = 0;
    };
    buffer buffers_[slot_count];
};

}  // namespace poem
