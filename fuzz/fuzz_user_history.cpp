// libFuzzer target for user_history::deserialize (format "POUH", which embeds a "POST" state with its
// own CRC-32): any input either reads or throws poem::error; an input that reads serialises back to
// the same bytes.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"
#include "poem/serve/user_history.hpp"

namespace {

constexpr std::size_t state_len_at = 24, state_at = 28;

void one(const std::vector<std::uint8_t>& b) {
    try {
        const auto h = poem::user_history::deserialize({b.data(), b.size()});
        if (h.serialize() != b) poem_fuzz::fail("POUH: serialize(deserialize(b)) != b");
    } catch (const poem::error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> b(data, data + size);
    one(b);  // as they are: the checksum checks
    // The embedded state's checksum, when its length field is plausible, then the outer one.
    if (b.size() >= state_at + 4) {
        const std::size_t len = poem_fuzz::get_u32le(b.data() + state_len_at);
        if (len >= 4 && state_at + len + 4 <= b.size()) poem_fuzz::fix_crc(b, state_at, len);
    }
    poem_fuzz::fix_crc(b, 0, b.size());
    one(b);
    return 0;
}
