#pragma once
// Per-thread scratch memory that the caller owns and reuses across requests, so the hot path does not
// allocate once the workspace has served the largest request seen. Not thread-safe: one per thread.
//
// A bump arena with scopes. A function opens a scope, allocates from it, and everything it allocated
// is released when the scope ends; scopes nest like the calls that open them:
//
//   auto scope = ws.scope();
//   span<float> a = scope.alloc<float>(n);    // 64-byte aligned, uninitialised
//   callee(..., ws, ...);                     // opens its own scope inside this one
//   span<std::uint32_t> b = scope.alloc<std::uint32_t>(n);
//
// No layer owns slots: each call takes what it needs for as long as its scope lives, so core knows
// nothing of the layers above it. Only the innermost open scope may allocate (poem::error otherwise).
// Growth: a request that needs more than the arena holds adds a block (earlier allocations stay where
// they are); when the outermost scope ends, the blocks are merged into one of their total size, so a
// warm workspace serves any request no larger than those it has seen from one block, allocating
// nothing. Memory handed out must not be used after its scope ends.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/span.hpp"

namespace poem {

class workspace;

// An open scope of a workspace (see workspace). Not copyable or movable: it lives in one block.
class workspace_scope {
public:
    workspace_scope(const workspace_scope&) = delete;
    workspace_scope& operator=(const workspace_scope&) = delete;
    inline ~workspace_scope();

    // n T, 64-byte aligned, contents unspecified; valid until this scope ends.
    template <class T>
    span<T> alloc(std::size_t n);

private:
    friend class workspace;
    inline explicit workspace_scope(workspace& ws) noexcept;
    workspace* ws_;
    std::size_t block_, used_, depth_;
};

class workspace {
public:
    workspace() = default;
    workspace(const workspace&) = delete;
    workspace& operator=(const workspace&) = delete;
    workspace(workspace&&) noexcept = default;  // with no scope open
    workspace& operator=(workspace&&) noexcept = default;

    // Opens a scope; its allocations are released when it ends.
    workspace_scope scope() noexcept { return workspace_scope(*this); }

    // Bytes held, all blocks together.
    std::size_t capacity() const noexcept {
        std::size_t total = 0;
        for (const auto& b : blocks_) total += b.capacity;
        return total;
    }
    // Blocks held: 1 once warm (0 before the first allocation).
    std::size_t blocks() const noexcept { return blocks_.size(); }

private:
    friend class workspace_scope;
    static constexpr std::size_t alignment = 64;
    static constexpr std::size_t min_block = 16384;
    static std::size_t round_up(std::size_t bytes) noexcept {
        return (bytes + alignment - 1) / alignment * alignment;
    }
    struct free_deleter {
        void operator()(std::byte* p) const noexcept { std::free(p); }
    };
    struct block {
        std::unique_ptr<std::byte, free_deleter> data;
        std::size_t capacity = 0;
    };
    static block make_block(std::size_t bytes) {
        void* p = std::aligned_alloc(alignment, bytes);
        if (p == nullptr) throw std::bad_alloc();
        return block{std::unique_ptr<std::byte, free_deleter>(static_cast<std::byte*>(p)), bytes};
    }

    std::byte* allocate(std::size_t bytes, std::size_t depth) {
        check(depth == depth_, "workspace: allocation from an outer scope while an inner one is open");
        bytes = round_up(bytes == 0 ? 1 : bytes);
        if (cur_ < blocks_.size() && used_ + bytes <= blocks_[cur_].capacity) {
            std::byte* p = blocks_[cur_].data.get() + used_;
            used_ += bytes;
            return p;
        }
        const std::size_t next = cur_ < blocks_.size() && used_ > 0 ? cur_ + 1 : cur_;
        if (next >= blocks_.size() || blocks_[next].capacity < bytes) {
            blocks_.resize(next);  // the blocks past `next` are free: one larger block replaces them
            const std::size_t total = capacity();
            blocks_.push_back(make_block(round_up(std::max(bytes, std::max(total, min_block)))));
        }
        cur_ = next;
        used_ = bytes;
        return blocks_[cur_].data.get();
    }

    void leave(std::size_t block_index, std::size_t used) {
        cur_ = block_index;
        used_ = used;
        if (--depth_ == 0 && blocks_.size() > 1) {
            const std::size_t total = capacity();
            blocks_.clear();
            try {
                blocks_.push_back(make_block(total));
            } catch (...) {  // out of memory while merging: start empty, grow again on demand
                blocks_.clear();
            }
        }
    }

    std::vector<block> blocks_;
    std::size_t cur_ = 0, used_ = 0, depth_ = 0;
};

inline workspace_scope::workspace_scope(workspace& ws) noexcept
    : ws_(&ws), block_(ws.cur_), used_(ws.used_), depth_(++ws.depth_) {}

inline workspace_scope::~workspace_scope() { ws_->leave(block_, used_); }

template <class T>
span<T> workspace_scope::alloc(std::size_t n) {
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                  "workspace holds trivial types only");
    static_assert(alignof(T) <= 64, "workspace memory is 64-byte aligned");
    check(n <= (std::size_t(1) << 40) / sizeof(T), "workspace: ", n, " elements requested");
    return {reinterpret_cast<T*>(ws_->allocate(n * sizeof(T), depth_)), n};
}

}  // namespace poem
