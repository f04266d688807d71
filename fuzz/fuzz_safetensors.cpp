// libFuzzer target for the safetensors reader and the model loader: any input either loads or throws
// poem::error. Anything else (another exception, a crash, a sanitizer report, a leak) is a bug.
// When the input is a loadable model, it also scores a tiny request with it (in bf16 precision when the
// input's size is odd, fp32 otherwise); when it holds a loadable learned fusion ensemble (fusion.*
// tensors), it scores three candidates with that.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "poem/core/workspace.hpp"
#include "poem/model/learned_fusion_file.hpp"
#include "poem/model/model.hpp"
#include "poem/model/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto f = poem::safetensors_file::from_bytes(data, size, "fuzz");
        double sum = 0;
        for (const auto& t : f.tensors())
            for (float v : f.to_f32(t)) sum += static_cast<double>(v);
        (void)sum;
        if (poem::has_learned_fusion(f)) {
            try {
                const poem::learned_fusion ens = poem::learned_fusion_from(f);
                std::vector<float> x(ens.objectives() * 3, 0.5f), fused(3);
                ens.score(poem::matrix_view<const float>(x.data(), ens.objectives(), 3), poem::span<float>(fused));
            } catch (const poem::error&) {
            }
        }
        const poem::model m = poem::model::from_file(f, {size % 2 ? poem::precision::bf16 : poem::precision::fp32});
        const auto& c = m.config();
        if (c.d > 256 || c.n_objectives > 64 || c.chrono_feats > 64) return 0;  // keep runs fast
        const std::size_t n = 3, l = 4;
        std::vector<std::uint64_t> ids{1, 2, 0xFFFFFFFFFFFFFFFFull, 4};
        std::vector<float> f1(l, 0.5f), obj(c.n_objectives * n, 0.25f), feats(l * c.chrono_feats, 1.0f);
        std::vector<std::uint32_t> lv{0, 1, 7, 100000};
        std::vector<std::uint8_t> mask{1, 0, 1, 1};
        const poem::span<const std::uint64_t> cid(ids.data(), n);
        const poem::span<const float> cf(f1.data(), n);
        const poem::span<const std::uint32_t> cl(lv.data(), n);
        const poem::candidate_view cand{cid, cf, cf, cl, poem::matrix_view<const float>(obj.data(), c.n_objectives, n)};
        const poem::chrono_view chrono{ids, f1, poem::matrix_view<const float>(feats.data(), l, c.chrono_feats), mask};
        const poem::po_view po{ids, f1, f1, lv, f1, mask};
        poem::workspace ws;
        (void)m.predict(cand, chrono, po, ws);
    } catch (const poem::error&) {
    }
    return 0;
}
