#pragma once
// poem's one byte codec: little-endian integers and IEEE-754 floats in byte buffers, and the CRC-32
// (IEEE 802.3) that every serialised format ends with. Every format of poem (partial-order state,
// user history, item graph) is written with byte_writer and read with byte_reader, whatever the host's
// endianness.
//
//   std::vector<std::uint8_t> b;
//   byte_writer w(b);  w.bytes("POST", 4); w.u16(1); ...; w.finish();    // appends the CRC-32
//   byte_reader r(b, "partial_order_state::deserialize");
//   r.verify_crc32();                                                      // the trailing 4 bytes
//   r.expect_magic("POST", 4); auto v = r.u16("version"); ...; r.expect_end();
//
// Every failure of a reader throws poem::error("poem: <what>: ... at byte offset N ..."); it never reads
// out of bounds, whatever the bytes.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "poem/core/bits.hpp"
#include "poem/core/error.hpp"
#include "poem/core/span.hpp"

namespace poem {

// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) of n bytes; `crc` continues an earlier call.
inline std::uint32_t crc32(const std::uint8_t* p, std::size_t n, std::uint32_t crc = 0) noexcept {
    struct table_t {
        std::uint32_t t[256];
        constexpr table_t() : t() {
            for (std::uint32_t i = 0; i < 256; ++i) {
                std::uint32_t c = i;
                for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                t[i] = c;
            }
        }
    };
    static constexpr table_t table{};
    std::uint32_t c = crc ^ 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) c = table.t[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

// Appends little-endian values to a byte vector.
class byte_writer {
public:
    explicit byte_writer(std::vector<std::uint8_t>& out) noexcept : out_(&out) {}

    void u8(std::uint8_t v) { out_->push_back(v); }
    void u16(std::uint16_t v) { put(v, 2); }
    void u32(std::uint32_t v) { put(v, 4); }
    void u64(std::uint64_t v) { put(v, 8); }
    void i64(std::int64_t v) { put(static_cast<std::uint64_t>(v), 8); }
    void f32(float v) { put(detail::float_bits(v), 4); }
    void bytes(const void* p, std::size_t n) {
        const auto* b = static_cast<const std::uint8_t*>(p);
        out_->insert(out_->end(), b, b + n);
    }
    std::size_t size() const noexcept { return out_->size(); }
    // Appends the CRC-32 of every byte written to the vector so far.
    void finish() { u32(crc32(out_->data(), out_->size())); }

private:
    void put(std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) out_->push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    std::vector<std::uint8_t>* out_;
};

// Bounds-checked little-endian reader; every failure names `what` (the format's reader) and the offset.
class byte_reader {
public:
    byte_reader(span<const std::uint8_t> b, const char* what) : b_(b), end_(b.size()), what_(what) {
        check(b.data() != nullptr || b.empty(), what_, ": null data");
    }

    std::size_t offset() const noexcept { return at_; }
    std::size_t remaining() const noexcept { return end_ - at_; }
    const char* what() const noexcept { return what_; }

    // Throws unless `n` more bytes of `field` are there.
    void need(std::size_t n, const char* field) const {
        check(end_ - at_ >= n, what_, ": truncated at byte offset ", at_, ": ", field, " needs ", n, " bytes, ",
              end_ - at_, " left");
    }
    std::uint8_t u8(const char* field) { return static_cast<std::uint8_t>(get(1, field)); }
    std::uint16_t u16(const char* field) { return static_cast<std::uint16_t>(get(2, field)); }
    std::uint32_t u32(const char* field) { return static_cast<std::uint32_t>(get(4, field)); }
    std::uint64_t u64(const char* field) { return get(8, field); }
    std::int64_t i64(const char* field) { return static_cast<std::int64_t>(get(8, field)); }
    float f32(const char* field) { return detail::bits_float(static_cast<std::uint32_t>(get(4, field))); }
    // A view of the next n bytes (checked), then skips them.
    span<const std::uint8_t> bytes(std::size_t n, const char* field) {
        need(n, field);
        span<const std::uint8_t> s(b_.data() + at_, n);
        at_ += n;
        return s;
    }

    // Checks the magic at the current offset.
    void expect_magic(const char* magic, std::size_t n, const char* format_name) {
        const std::size_t at = at_;
        const auto got = bytes(n, "magic");
        check(std::memcmp(got.data(), magic, n) == 0, what_, ": bad magic at byte offset ", at, " (not a ",
              format_name, ")");
    }

    // Checks that the last 4 bytes are the CRC-32 of every byte before them, and stops reading there.
    void verify_crc32() {
        check(b_.size() >= 4, what_, ": truncated: ", b_.size(), " bytes, too short for the CRC-32");
        const std::size_t at = b_.size() - 4;
        const auto stored = static_cast<std::uint32_t>(detail::get_le(b_.data() + at, 4));
        check(stored == crc32(b_.data(), at), what_, ": checksum mismatch (CRC-32 at byte offset ", at,
              "): the bytes are corrupt or truncated");
        end_ = at;
    }

    // Throws unless every byte (before the CRC, once verified) has been read.
    void expect_end() const {
        check(at_ == end_, what_, ": ", end_ - at_, " unexpected bytes from byte offset ", at_);
    }

private:
    std::uint64_t get(std::size_t n, const char* field) {
        need(n, field);
        const std::uint64_t v = detail::get_le(b_.data() + at_, static_cast<int>(n));
        at_ += n;
        return v;
    }
    span<const std::uint8_t> b_;
    std::size_t end_;
    std::size_t at_ = 0;
    const char* what_;
};

}  // namespace poem
