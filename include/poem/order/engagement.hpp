#pragma once
// One engagement event (what a user did with an item), and the rule that says which events count as
// engagement. poem has this one event type: the chronological sequence and the request ranker's log
// read it (order/chrono.hpp, serve/), the item graph is built from it and hierarchical samples take
// one per candidate (sample/).
//
// Engagement (engagement_config; each signal can be switched off):
//   click, like, follow   the event's flag
//   long view             play_time >= min(duration, long_view_seconds); a duration that is not finite
//                         and > 0 counts as unknown, leaving the threshold alone; a play_time that is
//                         NaN or negative is never a long view.
// An event is engaged when any enabled signal holds.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "poem/core/error.hpp"

namespace poem {

struct engagement_event {
    std::uint64_t user_id = 0;  // who engaged (the item graph links items per user; one user's log may leave it 0)
    std::uint64_t item_id = 0;
    std::int64_t time = 0;     // seconds, same clock as request_time
    float play_time = 0.0f;    // seconds watched
    float duration = 0.0f;     // seconds, the item's length
    bool click = false;
    bool like = false;
    bool follow = false;
};

struct engagement_config {
    bool click = true;
    bool long_view = true;
    float long_view_seconds = 10.0f;  // finite, >= 0
    bool like = true;
    bool follow = true;
};

inline void validate(const engagement_config& rule) {
    check(std::isfinite(rule.long_view_seconds) && rule.long_view_seconds >= 0.0f,
          "engagement_config.long_view_seconds must be finite and >= 0, got ", rule.long_view_seconds);
}

inline bool is_long_view(const engagement_event& e, float threshold) noexcept {
    if (!(e.play_time >= 0.0f)) return false;  // NaN or negative
    const float need = (std::isfinite(e.duration) && e.duration > 0.0f) ? std::min(e.duration, threshold) : threshold;
    return e.play_time >= need;
}

inline bool is_engaged(const engagement_event& e, const engagement_config& rule) noexcept {
    return (rule.click && e.click) || (rule.like && e.like) || (rule.follow && e.follow) ||
           (rule.long_view && is_long_view(e, rule.long_view_seconds));
}

}  // namespace poem
