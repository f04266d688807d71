// libFuzzer target for model_config::from_json (the "poem_config" metadata of a model file): any text
// either parses or throws poem::error (no other exception, no crash, no deep recursion).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "poem/model/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const auto c = poem::model_config::from_json(text, "fuzz");
        if (c.n_heads == 0 || c.d % c.n_heads != 0) poem_fuzz::fail("model config: d not a multiple of n_heads");
        (void)c.tower_in();
    } catch (const poem::error&) {
    }
    return 0;
}
