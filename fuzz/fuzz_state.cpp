// libFuzzer target for partial_order_state::deserialize (format "POST"): any input either reads or
// throws poem::error; an input that reads serialises back to the same bytes, and its sequence builds.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"
#include "poem/order/state.hpp"

namespace {

void one(const std::vector<std::uint8_t>& b) {
    try {
        const auto s = poem::partial_order_state::deserialize({b.data(), b.size()});
        if (s.serialize() != b) poem_fuzz::fail("POST: serialize(deserialize(b)) != b");
        const auto again = poem::partial_order_state::deserialize({b.data(), b.size()});
        if (!(again == s)) poem_fuzz::fail("POST: two reads of the same bytes differ");
    } catch (const poem::error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    poem_fuzz::as_is_and_with_crc(data, size, one);
    return 0;
}
