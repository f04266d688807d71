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
    one(std::vector<std::uint8_t>(data, data + size));  // as they are: the checksum check
    one(poem_fuzz::with_crc(data, size));               // with a valid checksum: everything behind it
    return 0;
}
