#pragma once
// Scratch slots of order/ in the caller's workspace (not part of the API). One call may use several.

#include <cstddef>

#include "poem/core/workspace.hpp"

namespace poem {
namespace detail {

enum order_slot : std::size_t {
    order_slot_key = workspace::order_first,  // u64 sort keys
    order_slot_key_tmp,                       // u64 radix scratch
    order_slot_idx,                           // u32 candidate indices
    order_slot_idx_tmp,                       // u32 radix scratch
    order_slot_points,                        // u32 K x M keys of the sorted candidates
    order_slot_links,                         // u32 per sorted candidate: level / previous front member
    order_slot_fronts,                        // u32 per level: tail key / last member
    order_slot_misc,                          // u32 / float: samplers, tiers
};
static_assert(std::size_t(order_slot_misc) <= std::size_t(workspace::order_last), "order/ uses more workspace slots than it owns");

}  // namespace detail
}  // namespace poem
