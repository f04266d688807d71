// libFuzzer target for deserialize_item_graph (format "POEMGRPH" version 2): any input either reads or
// throws poem::error; a graph that reads serialises back to the same bytes, and its samplers work.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"
#include "poem/sample/item_graph_io.hpp"

namespace {

void one(const std::vector<std::uint8_t>& b) {
    try {
        const auto g = poem::deserialize_item_graph({b.data(), b.size()});
        if (poem::serialize_item_graph(g) != b) poem_fuzz::fail("item graph: serialize(deserialize(b)) != b");
    } catch (const poem::error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    poem_fuzz::as_is_and_with_crc(data, size, one);
    return 0;
}
