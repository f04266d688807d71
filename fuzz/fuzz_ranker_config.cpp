// libFuzzer target for ranker_config_from_json (the "poem_serving" metadata, serve/ranker_config.hpp):
// any text either parses or throws poem::error; a config that parses writes JSON that parses back to
// the same config (to_json(from_json(to_json(c))) == to_json(c)).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "poem/serve/ranker_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const auto c = poem::ranker_config_from_json(text, "fuzz");
        const std::string once = poem::to_json(c);
        std::string twice;
        try {
            twice = poem::to_json(poem::ranker_config_from_json(once, "fuzz round trip"));
        } catch (const poem::error&) {
            poem_fuzz::fail("ranker config: to_json of a parsed config does not parse");
        }
        if (once != twice) poem_fuzz::fail("ranker config: to_json(from_json(to_json(c))) != to_json(c)");
    } catch (const poem::error&) {
    }
    return 0;
}
