#pragma once
// user_history: everything the ranker remembers of one user (the partial-order state and the engaged
// events), and its byte format: the one record a host keeps per user in its key-value store.
//
// Byte format (little-endian, core/codec.hpp), version 1:
//   offset 0   4 bytes  magic "POUH"
//          4   u16      format version (1)
//          6   u16      reserved, 0
//          8   u64      user_id
//         16   u64      requests recorded (the ordinal that request_seed() mixes in)
//         24   u32      S, the length of the partial-order state's own bytes
//         28   S bytes  partial_order_state::serialize() (format "POST", with its own CRC-32)
//              u32      E, engaged events in the log
//              E x {u64 item_id, i64 time, f32 play_time, f32 duration, u8 flags (1 click, 2 like, 4 follow)}
//              (each event's user_id is the history's)
//              u32      CRC-32 of every byte before it
// deserialize() checks the checksum, magic, version, reserved bits, lengths (exactly, so a record never
// makes the reader allocate more than its own size) and the embedded state, and throws poem::error
// naming the byte offset of the first problem.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "poem/core/codec.hpp"
#include "poem/core/error.hpp"
#include "poem/core/span.hpp"
#include "poem/order/chrono.hpp"
#include "poem/order/state.hpp"

namespace poem {

struct user_history {
    std::uint64_t user_id = 0;
    std::uint64_t requests_recorded = 0;  // requests recorded into `state` so far
    partial_order_state state;
    std::vector<engagement_event> log;  // engaged events, in arrival order

    static constexpr std::uint16_t format_version = 1;
    static constexpr std::size_t event_bytes = 25;

    void serialize(std::vector<std::uint8_t>& out) const {
        out.clear();
        byte_writer w(out);
        w.bytes("POUH", 4);
        w.u16(format_version);
        w.u16(0);
        w.u64(user_id);
        w.u64(requests_recorded);
        const std::size_t at = w.size();
        w.u32(0);  // the state's length, patched below
        std::vector<std::uint8_t> state_bytes;
        state.serialize(state_bytes);
        w.bytes(state_bytes.data(), state_bytes.size());
        detail::put_le(out.data() + at, state_bytes.size(), 4);
        w.u32(static_cast<std::uint32_t>(log.size()));
        for (const engagement_event& e : log) {
            w.u64(e.item_id);
            w.i64(e.time);
            w.f32(e.play_time);
            w.f32(e.duration);
            w.u8(static_cast<std::uint8_t>((e.click ? 1 : 0) | (e.like ? 2 : 0) | (e.follow ? 4 : 0)));
        }
        w.finish();
    }
    std::vector<std::uint8_t> serialize() const {
        std::vector<std::uint8_t> out;
        serialize(out);
        return out;
    }

    static user_history deserialize(span<const std::uint8_t> bytes) {
        byte_reader in(bytes, "user_history::deserialize");
        in.verify_crc32();
        in.expect_magic("POUH", 4, "poem user history");
        const auto version = in.u16("version");
        check(version == format_version, "user_history::deserialize: unsupported format version ", version,
              " at byte offset 4 (this build reads version ", format_version, ")");
        const auto reserved = in.u16("reserved");
        check(reserved == 0, "user_history::deserialize: reserved field at byte offset 6 is ", reserved, ", expected 0");
        user_history h;
        h.user_id = in.u64("user_id");
        h.requests_recorded = in.u64("requests recorded");
        const std::size_t state_at = in.offset() + 4;
        const std::uint32_t state_len = in.u32("state length");
        const auto state_bytes = in.bytes(state_len, "partial-order state");
        try {
            h.state = partial_order_state::deserialize(state_bytes);
        } catch (const error& e) {
            detail::fail("poem: user_history::deserialize: the partial-order state at byte offset ", state_at,
                         " is invalid: ", e.what());
        }
        const std::size_t count_at = in.offset();
        const std::uint32_t events = in.u32("event count");
        check(in.remaining() == std::size_t(events) * event_bytes, "user_history::deserialize: ", events,
              " events at byte offset ", count_at, " need ", std::size_t(events) * event_bytes, " bytes, ",
              in.remaining(), " are there");
        h.log.resize(events);
        for (engagement_event& e : h.log) {
            e.user_id = h.user_id;
            e.item_id = in.u64("item_id");
            e.time = in.i64("time");
            e.play_time = in.f32("play_time");
            e.duration = in.f32("duration");
            const std::size_t flags_at = in.offset();
            const std::uint8_t flags = in.u8("flags");
            check(flags < 8, "user_history::deserialize: event flags at byte offset ", flags_at, " are ", int(flags),
                  " (only bits 0-2 are defined)");
            e.click = flags & 1;
            e.like = flags & 2;
            e.follow = flags & 4;
        }
        in.expect_end();
        return h;
    }

    // The same bytes: equality of what a host would store (floats compared by their bits).
    friend bool operator==(const user_history& a, const user_history& b) { return a.serialize() == b.serialize(); }
    friend bool operator!=(const user_history& a, const user_history& b) { return !(a == b); }
};

}  // namespace poem
