#pragma once
// partial_order_state: one user's recent requests, as the quintuples sampled from each, in a bounded
// ring buffer; and the partial-order sequence it yields at the next request.
//
// Bounds: at most max_tokens quintuples and max_requests requests. Recording a request evicts whole
// requests, oldest first, until both bounds hold; a request with more than max_tokens quintuples keeps
// its best max_tokens. Recording an empty sample does nothing.
//
// Order: within a request, tokens are kept by level, then fused score (best first; every non-finite
// score last, tied: core/sort_key.hpp), then the order given to record(). sequence(now, length) walks
// the requests newest first and emits their tokens in that order, keeping only the first (that is,
// newest) occurrence of each item id, until `length` tokens; the rest is padding (mask 0, every field 0).
//
// Which requests a sequence sees: those with request_time <= now. The host calls sequence() before it
// records the current request, so requests recorded earlier in the same second are seen and the
// current one is not; a request with request_time > now (a replay that recorded ahead, clock skew) is
// skipped. request_index counts the requests seen, 0 = the newest of them.
//
// Tokens hold finite fused scores and rank percentiles: record() and deserialize() refuse others.
// record() needs every quintuple of a call to share one request_time, no older than the newest request
// held (requests arrive in time order); otherwise it throws poem::error and leaves the state unchanged.
//
// Serialisation (serialize / deserialize), all integers little-endian, written byte by byte:
//   offset 0   4 bytes  magic "POST"
//          4   u16      format version (1)
//          6   u16      reserved, 0
//          8   u32      max_tokens       12  u32  max_requests
//         16   u32      request count R  20  u32  token count T
//         24   R x {i64 request_time, u32 token count}            oldest request first
//              T x {u64 item_id, f32 fused_score, f32 rank_pct, u32 level}   (floats as IEEE-754 bits)
//              u32      CRC-32 (IEEE 802.3) of every byte before it
// deserialize() checks the magic, version, bounds, sizes, checksum and consistency (each request has
// >= 1 token, counts add up, times do not decrease) and throws poem::error naming the byte offset of
// the first problem; it never reads out of bounds, whatever the bytes.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "poem/core/bits.hpp"
#include "poem/core/codec.hpp"
#include "poem/core/error.hpp"
#include "poem/core/span.hpp"
#include "poem/core/workspace.hpp"
#include "poem/fusion/quintuple.hpp"
#include "poem/order/detail/token_order.hpp"

namespace poem {

// A fixed-length partial-order sequence: parallel arrays of `length` entries, the first `count` real.
struct po_sequence {
    std::size_t length = 0;
    std::size_t count = 0;
    std::vector<std::uint64_t> item_id;
    std::vector<float> fused_score;
    std::vector<float> rank_pct;
    std::vector<std::uint32_t> level;
    std::vector<float> age_seconds;        // now - request_time
    std::vector<std::uint32_t> request_index;  // 0 = newest request seen
    std::vector<std::uint8_t> mask;        // 1 = real token, 0 = padding
};

class partial_order_state {
public:
    static constexpr std::size_t max_tokens_limit = std::size_t(1) << 16;
    static constexpr std::size_t max_requests_limit = std::size_t(1) << 16;
    static constexpr std::size_t max_sequence_length = std::size_t(1) << 20;
    static constexpr std::uint16_t format_version = 1;

    explicit partial_order_state(std::size_t max_tokens = 256, std::size_t max_requests = 32)
        : max_tokens_(max_tokens), max_requests_(max_requests) {
        check(max_tokens >= 1 && max_tokens <= max_tokens_limit, "partial_order_state: max_tokens must be in [1, ",
              max_tokens_limit, "], got ", max_tokens);
        check(max_requests >= 1 && max_requests <= max_requests_limit,
              "partial_order_state: max_requests must be in [1, ", max_requests_limit, "], got ", max_requests);
        tokens_.resize(max_tokens_);
        requests_.resize(max_requests_);
    }

    std::size_t max_tokens() const noexcept { return max_tokens_; }
    std::size_t max_requests() const noexcept { return max_requests_; }
    std::size_t token_count() const noexcept { return tok_size_; }
    std::size_t request_count() const noexcept { return req_size_; }
    bool empty() const noexcept { return req_size_ == 0; }
    void clear() noexcept { tok_head_ = tok_size_ = req_head_ = req_size_ = 0; }

    // The request_time of the r-th request held, 0 = oldest.
    std::int64_t request_time(std::size_t r) const {
        check(r < req_size_, "partial_order_state::request_time: request ", r, " of ", req_size_);
        return req(r).time;
    }
    // The quintuples held for the r-th request (0 = oldest), in their kept order.
    std::vector<quintuple> request_tokens(std::size_t r) const {
        check(r < req_size_, "partial_order_state::request_tokens: request ", r, " of ", req_size_);
        const request_rec& q = req(r);
        std::vector<quintuple> out;
        for (std::uint32_t t = 0; t < q.count; ++t) {
            const token& k = tokens_[(q.start + t) % max_tokens_];
            out.push_back({k.item_id, q.time, k.fused_score, k.rank_pct, k.level});
        }
        return out;
    }

    // Adds one request's sampled quintuples (see the top of this header for the rules); scratch from `ws`.
    void record(span<const quintuple> sampled, workspace& ws) {
        const std::size_t n = sampled.size();
        if (n == 0) return;
        check(sampled.data() != nullptr, "partial_order_state::record: null data");
        const std::int64_t t = sampled[0].request_time;
        for (std::size_t i = 0; i < n; ++i) {
            check(sampled[i].request_time == t, "partial_order_state::record: sampled[", i, "].request_time = ",
                  sampled[i].request_time, " differs from sampled[0].request_time = ", t, " (one request per call)");
            // Fusion never makes a non-finite score: one here is a bug upstream, refused before it can
            // make a state unequal to itself.
            check(std::isfinite(sampled[i].fused_score) && std::isfinite(sampled[i].rank_pct),
                  "partial_order_state::record: sampled[", i, "] has a non-finite fused_score or rank_pct (",
                  sampled[i].fused_score, ", ", sampled[i].rank_pct, ")");
        }
        if (req_size_ > 0) {
            const std::int64_t newest = req(req_size_ - 1).time;
            check(t >= newest, "partial_order_state::record: request_time ", t,
                  " is older than the newest request held (", newest, ")");
        }
        // Keep order: level, fused score (best first, non-finite last), given order.
        auto scope = ws.scope();
        std::uint32_t* order = scope.alloc<std::uint32_t>(n).data();
        for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
        detail::sort_tokens(sampled.data(), order, n);
        const std::size_t keep = std::min(n, max_tokens_);
        while (req_size_ > 0 && (tok_size_ + keep > max_tokens_ || req_size_ + 1 > max_requests_)) pop_oldest();
        const std::size_t start = (tok_head_ + tok_size_) % max_tokens_;
        for (std::size_t i = 0; i < keep; ++i) {
            const quintuple& q = sampled[order[i]];
            tokens_[(start + i) % max_tokens_] = token{q.item_id, q.fused_score, q.rank_pct, q.level};
        }
        tok_size_ += keep;
        requests_[(req_head_ + req_size_) % max_requests_] =
            request_rec{t, static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(keep)};
        ++req_size_;
    }
    void record(const std::vector<quintuple>& sampled, workspace& ws) { record(span<const quintuple>(sampled), ws); }
    // Convenience (a workspace of its own per call; not for a serving path).
    void record(span<const quintuple> sampled) {
        workspace ws;
        record(sampled, ws);
    }
    void record(const std::vector<quintuple>& sampled) { record(span<const quintuple>(sampled)); }

    // The partial-order sequence at time `now`, `length` entries (see the top of this header).
    // Reuses `out`'s memory and the workspace: no allocation once both have served this length.
    void sequence(std::int64_t now, std::size_t length, workspace& ws, po_sequence& out) const {
        check(length <= max_sequence_length, "partial_order_state::sequence: length ", length, " > ",
              max_sequence_length);
        out.length = length;
        out.item_id.resize(length);
        out.fused_score.resize(length);
        out.rank_pct.resize(length);
        out.level.resize(length);
        out.age_seconds.resize(length);
        out.request_index.resize(length);
        out.mask.resize(length);
        std::size_t c = 0;
        if (length > 0 && tok_size_ > 0) {
            std::size_t cap = 16;
            while (cap < 2 * std::min(length, tok_size_)) cap *= 2;
            auto scope = ws.scope();  // an open-addressing set of the item ids emitted
            std::uint64_t* seen_ids = scope.alloc<std::uint64_t>(cap).data();
            std::uint8_t* seen_used = scope.alloc<std::uint8_t>(cap).data();
            std::fill(seen_used, seen_used + cap, std::uint8_t(0));
            const std::size_t mask = cap - 1;
            std::uint32_t seen_requests = 0;
            for (std::size_t r = req_size_; r-- > 0 && c < length;) {
                const request_rec& q = req(r);
                if (q.time > now) continue;
                const float age = static_cast<float>(static_cast<double>(now) - static_cast<double>(q.time));
                for (std::uint32_t t = 0; t < q.count && c < length; ++t) {
                    std::size_t at = q.start + t;
                    if (at >= max_tokens_) at -= max_tokens_;
                    const token& k = tokens_[at];
                    std::size_t h = static_cast<std::size_t>((k.item_id * 0x9E3779B97F4A7C15ull) >> 32) & mask;
                    bool dup = false;
                    while (seen_used[h]) {
                        if (seen_ids[h] == k.item_id) {
                            dup = true;
                            break;
                        }
                        h = (h + 1) & mask;
                    }
                    if (dup) continue;
                    seen_used[h] = 1;
                    seen_ids[h] = k.item_id;
                    out.item_id[c] = k.item_id;
                    out.fused_score[c] = k.fused_score;
                    out.rank_pct[c] = k.rank_pct;
                    out.level[c] = k.level;
                    out.age_seconds[c] = age;
                    out.request_index[c] = seen_requests;
                    out.mask[c] = 1;
                    ++c;
                }
                ++seen_requests;
            }
        }
        out.count = c;
        for (std::size_t i = c; i < length; ++i) {
            out.item_id[i] = 0;
            out.fused_score[i] = 0.0f;
            out.rank_pct[i] = 0.0f;
            out.level[i] = 0;
            out.age_seconds[i] = 0.0f;
            out.request_index[i] = 0;
            out.mask[i] = 0;
        }
    }

    // Convenience (allocates the result and a workspace; not for a serving path).
    po_sequence sequence(std::int64_t now, std::size_t length) const {
        workspace ws;
        po_sequence out;
        sequence(now, length, ws, out);
        return out;
    }

    // ---- serialisation ----------------------------------------------------------------------------

    // Writes the bytes into `b` (reusing its memory).
    void serialize(std::vector<std::uint8_t>& b) const {
        b.clear();
        b.reserve(header_bytes + req_size_ * request_bytes + tok_size_ * token_bytes + 4);
        byte_writer w(b);
        w.bytes("POST", 4);
        w.u16(format_version);
        w.u16(0);
        w.u32(static_cast<std::uint32_t>(max_tokens_));
        w.u32(static_cast<std::uint32_t>(max_requests_));
        w.u32(static_cast<std::uint32_t>(req_size_));
        w.u32(static_cast<std::uint32_t>(tok_size_));
        for (std::size_t r = 0; r < req_size_; ++r) {
            w.i64(req(r).time);
            w.u32(req(r).count);
        }
        for (std::size_t r = 0; r < req_size_; ++r) {
            const request_rec& q = req(r);
            for (std::uint32_t t = 0; t < q.count; ++t) {
                const token& k = tokens_[(q.start + t) % max_tokens_];
                w.u64(k.item_id);
                w.f32(k.fused_score);
                w.f32(k.rank_pct);
                w.u32(k.level);
            }
        }
        w.finish();
    }

    std::vector<std::uint8_t> serialize() const {
        std::vector<std::uint8_t> b;
        serialize(b);
        return b;
    }

    static partial_order_state deserialize(span<const std::uint8_t> bytes) {
        constexpr const char* where = "partial_order_state::deserialize: ";
        byte_reader in(bytes, "partial_order_state::deserialize");
        in.expect_magic("POST", 4, "poem partial-order state");
        const auto version = in.u16("version");
        check(version == format_version, where, "unsupported format version ", version, " at byte offset 4 (this ",
              "build reads version ", format_version, ")");
        const auto reserved = in.u16("reserved");
        check(reserved == 0, where, "reserved field at byte offset 6 is ", reserved, ", expected 0");
        const std::uint64_t max_tokens = in.u32("max_tokens");
        check(max_tokens >= 1 && max_tokens <= max_tokens_limit, where, "max_tokens = ", max_tokens,
              " at byte offset 8, expected 1..", max_tokens_limit);
        const std::uint64_t max_requests = in.u32("max_requests");
        check(max_requests >= 1 && max_requests <= max_requests_limit, where, "max_requests = ", max_requests,
              " at byte offset 12, expected 1..", max_requests_limit);
        const std::uint64_t n_req = in.u32("request count");
        check(n_req <= max_requests, where, "request count ", n_req, " at byte offset 16 exceeds max_requests ",
              max_requests);
        const std::uint64_t n_tok = in.u32("token count");
        check(n_tok <= max_tokens, where, "token count ", n_tok, " at byte offset 20 exceeds max_tokens ",
              max_tokens);
        check(n_tok >= n_req, where, "token count ", n_tok, " at byte offset 20 is below the request count ", n_req);
        const std::size_t total = header_bytes + n_req * request_bytes + n_tok * token_bytes + 4;
        check(bytes.size() >= total, where, "truncated: ", bytes.size(), " bytes, the header at byte offset 16 ",
              "announces ", total);
        check(bytes.size() == total, where, total, " bytes expected, ", bytes.size() - total,
              " trailing bytes from byte offset ", total);
        in.verify_crc32();

        partial_order_state s(static_cast<std::size_t>(max_tokens), static_cast<std::size_t>(max_requests));
        std::uint64_t sum = 0;
        std::int64_t prev_time = std::numeric_limits<std::int64_t>::min();
        for (std::uint64_t r = 0; r < n_req; ++r) {
            const std::size_t at = in.offset();
            const auto time = in.i64("request_time");
            const std::uint64_t count = in.u32("request token count");
            check(time >= prev_time, where, "request ", r, " at byte offset ", at, " is older than the one before");
            check(count >= 1 && count <= n_tok - sum, where, "request ", r, " at byte offset ", at + 8, " has ",
                  count, " tokens, ", n_tok - sum, " left to assign");
            s.requests_[r] = request_rec{time, static_cast<std::uint32_t>(sum), static_cast<std::uint32_t>(count)};
            sum += count;
            prev_time = time;
        }
        check(sum == n_tok, where, "requests hold ", sum, " tokens, the header at byte offset 20 says ", n_tok);
        for (std::uint64_t t = 0; t < n_tok; ++t) {
            token& k = s.tokens_[t];
            const std::size_t at = in.offset();
            k.item_id = in.u64("item_id");
            k.fused_score = in.f32("fused_score");
            k.rank_pct = in.f32("rank_pct");
            k.level = in.u32("level");
            check(std::isfinite(k.fused_score) && std::isfinite(k.rank_pct), where, "token ", t, " at byte offset ", at,
                  " has a non-finite fused_score or rank_pct");
        }
        in.expect_end();
        s.req_size_ = static_cast<std::size_t>(n_req);
        s.tok_size_ = static_cast<std::size_t>(n_tok);
        return s;
    }

    // Same bounds and the same requests and tokens (ring positions aside).
    friend bool operator==(const partial_order_state& a, const partial_order_state& b) {
        if (a.max_tokens_ != b.max_tokens_ || a.max_requests_ != b.max_requests_ || a.req_size_ != b.req_size_ ||
            a.tok_size_ != b.tok_size_)
            return false;
        for (std::size_t r = 0; r < a.req_size_; ++r)
            if (a.request_time(r) != b.request_time(r) || !(a.request_tokens(r) == b.request_tokens(r))) return false;
        return true;
    }
    friend bool operator!=(const partial_order_state& a, const partial_order_state& b) { return !(a == b); }

private:
    static constexpr std::size_t header_bytes = 24;
    static constexpr std::size_t request_bytes = 12;
    static constexpr std::size_t token_bytes = 20;

    struct token {
        std::uint64_t item_id;
        float fused_score;
        float rank_pct;
        std::uint32_t level;
    };
    struct request_rec {
        std::int64_t time;
        std::uint32_t start;  // first token's slot in the ring
        std::uint32_t count;
    };

    const request_rec& req(std::size_t r) const noexcept { return requests_[(req_head_ + r) % max_requests_]; }

    void pop_oldest() noexcept {
        const request_rec& q = requests_[req_head_];
        tok_head_ = (tok_head_ + q.count) % max_tokens_;
        tok_size_ -= q.count;
        req_head_ = (req_head_ + 1) % max_requests_;
        --req_size_;
        if (req_size_ == 0) tok_head_ = tok_size_ = 0;
    }

    std::size_t max_tokens_;
    std::size_t max_requests_;
    std::vector<token> tokens_;         // ring of max_tokens_
    std::vector<request_rec> requests_; // ring of max_requests_
    std::size_t tok_head_ = 0, tok_size_ = 0;
    std::size_t req_head_ = 0, req_size_ = 0;
};

}  // namespace poem
