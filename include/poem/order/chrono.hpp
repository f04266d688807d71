#pragma once
// The chronological sequence: the last L items a user engaged with before `now`, newest first, with
// per-token features. It stays beside the partial-order sequence as the model's second history.
//
// Engagement (engagement_config; each signal can be switched off):
//   click, like, follow   the event's flag
//   long view             play_time >= min(duration, long_view_seconds); a duration that is not finite
//                         and > 0 counts as unknown, leaving the threshold alone; a play_time that is
//                         NaN or negative is never a long view.
// An event is engaged when any enabled signal holds. Events at time >= now are ignored (an event at
// `now` may be the user's reaction to the request being served: leaving it out avoids label leakage
// offline). The log need not be sorted: the newest L engaged events are chosen by time, ties broken by
// log position (later first). Every engaged event is a token; an item engaged twice appears twice.
// Features: play_ratio = play_time / duration clamped to [0, 1] (0 when either is unknown), and the
// click, like, follow and long-view flags. Padding: mask 0, every field 0.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/span.hpp"
#include "poem/order/engagement.hpp"
#include "poem/core/workspace.hpp"

namespace poem {

struct chrono_sequence {
    std::size_t length = 0;
    std::size_t count = 0;
    std::vector<std::uint64_t> item_id;
    std::vector<float> age_seconds;   // now - time (> 0)
    std::vector<float> play_ratio;    // play_time / duration in [0, 1]
    std::vector<std::uint8_t> click;
    std::vector<std::uint8_t> like;
    std::vector<std::uint8_t> follow;
    std::vector<std::uint8_t> long_view;
    std::vector<std::uint8_t> mask;   // 1 = real token
};

inline constexpr std::size_t max_chrono_length = std::size_t(1) << 20;

// Builds the sequence into `out`, reusing its memory; scratch from `ws`.
inline void build_chrono_sequence(span<const engagement_event> log, std::int64_t now, std::size_t length,
                                  const engagement_config& rule, workspace& ws, chrono_sequence& out) {
    validate(rule);
    check(length <= max_chrono_length, "chrono_sequence: length ", length, " > ", max_chrono_length);
    check(log.size() < (std::size_t(1) << 32), "chrono_sequence: log of ", log.size(), " events, at most 2^32 - 1");
    check(log.data() != nullptr || log.empty(), "chrono_sequence: log has null data");
    out.length = length;
    out.item_id.assign(length, 0);
    out.age_seconds.assign(length, 0.0f);
    out.play_ratio.assign(length, 0.0f);
    out.click.assign(length, 0);
    out.like.assign(length, 0);
    out.follow.assign(length, 0);
    out.long_view.assign(length, 0);
    out.mask.assign(length, 0);
    auto scope = ws.scope();
    std::uint32_t* cand = scope.alloc<std::uint32_t>(log.size()).data();
    std::size_t engaged = 0;
    for (std::size_t i = 0; i < log.size(); ++i)
        if (log[i].time < now && is_engaged(log[i], rule)) cand[engaged++] = static_cast<std::uint32_t>(i);
    auto newer = [&](std::uint32_t a, std::uint32_t b) {
        return log[a].time != log[b].time ? log[a].time > log[b].time : a > b;
    };
    const std::size_t c = std::min(length, engaged);
    if (c < engaged) std::nth_element(cand, cand + c, cand + engaged, newer);
    std::sort(cand, cand + c, newer);
    for (std::size_t j = 0; j < c; ++j) {
        const engagement_event& e = log[cand[j]];
        out.item_id[j] = e.item_id;
        out.age_seconds[j] = static_cast<float>(static_cast<double>(now) - static_cast<double>(e.time));
        float ratio = 0.0f;
        if (std::isfinite(e.duration) && e.duration > 0.0f && e.play_time >= 0.0f && std::isfinite(e.play_time))
            ratio = std::min(e.play_time / e.duration, 1.0f);
        out.play_ratio[j] = ratio;
        out.click[j] = e.click;
        out.like[j] = e.like;
        out.follow[j] = e.follow;
        out.long_view[j] = is_long_view(e, rule.long_view_seconds);
        out.mask[j] = 1;
    }
    out.count = c;
}

// Convenience (allocates the result and a workspace; not for a serving path).
inline chrono_sequence build_chrono_sequence(span<const engagement_event> log, std::int64_t now, std::size_t length,
                                             const engagement_config& rule = {}) {
    workspace ws;
    chrono_sequence out;
    build_chrono_sequence(log, now, length, rule, ws, out);
    return out;
}

}  // namespace poem
