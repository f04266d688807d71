// Compiled by CTest (consumer_strict, consumer_strict_native, and with clang++ consumer_strict_clang,
// consumer_strict_clang_native) with -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror, without
// and with -march=native: poem's headers must compile warning-free in a strict host service. It only
// compiles (never runs); the calls instantiate poem's templates.
#include <poem/poem.hpp>
#include <poem/serve/request_ranker.hpp>

#include <cstdint>
#include <vector>

int main() {
    const std::vector<float> scores = {0.1f, 0.9f, 0.5f, 3.0f, 1.0f, 2.0f};
    poem::fusion_config spec;
    spec.objectives = {{}, {poem::direction::lower_is_better, poem::normalization::rank_pct, 1.0f}};
    poem::workspace ws;
    const auto fused = poem::fuse(poem::matrix_view<const float>(scores.data(), 2, 3), spec, ws);

    const std::vector<float> pos = {0.5f, 0.7f}, neg = {0.1f, 0.2f, 0.3f};
    const std::vector<std::uint32_t> pt = {0, 1}, nt = {1, 2, 2};
    std::vector<float> gp(pos.size()), gn(neg.size());
    const float loss = poem::dense_pairwise_loss_tiered<std::uint32_t>(
        {pos.data(), pos.size()}, {pt.data(), pt.size()}, {neg.data(), neg.size()}, {nt.data(), nt.size()}, 1.0f,
        poem::pairwise_loss_config{}, {gp.data(), gp.size()}, {gn.data(), gn.size()});

    poem::partial_order_state state(8, 4);
    const auto bytes = state.serialize();
    const auto back = poem::partial_order_state::deserialize({bytes.data(), bytes.size()});
    return fused.order[0] == 1 && loss >= 0.0f && back == state ? 0 : 1;
}
