#pragma once
// The item graph's file format (version 2), written and read with poem's one codec (core/codec.hpp).
//
//   offset 0   magic "POEMGRPH"            8 bytes
//   offset 8   format version (2)          u32
//   offset 12  reserved (0)                u32
//   offset 16  item count n                u64
//   offset 24  edge count m                u64
//   offset 32  offsets                     (n + 1) x u64, offsets[0] = 0, monotone, offsets[n] = m
//   then       neighbours                  m x u32, < n, ascending and unique within a row
//   then       weights                     m x f32, finite and > 0
//   then       CRC-32 of every byte before it   u32
// All little-endian; the length must be exactly 32 + 8(n + 1) + 8m + 4. Reading checks, in order: magic,
// version (version 1, FNV-1a trailer, is refused by name), reserved, the length the counts imply,
// offsets, neighbours, weights, then the CRC-32 (which catches a corrupted byte that still looks
// valid). Every failure throws poem::error naming the byte offset (and the path, for a file). The
// alias entries are rebuilt on load, not stored.
//
// save_item_graph writes a temporary file beside the target, flushes it to disk, and renames it over
// the target: a reader sees the old file or the new one, never a partial one.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "poem/core/codec.hpp"
#include "poem/core/error.hpp"
#include "poem/core/file.hpp"
#include "poem/core/span.hpp"
#include "poem/sample/item_graph.hpp"

namespace poem {

struct item_graph_format {
    static constexpr char magic[8] = {'P', 'O', 'E', 'M', 'G', 'R', 'P', 'H'};
    static constexpr std::uint32_t version = 2;
    static constexpr std::size_t header_bytes = 32;
};

inline std::vector<std::uint8_t> serialize_item_graph(const item_graph& g) {
    const std::size_t n = g.item_count(), m = g.edge_count();
    std::vector<std::uint8_t> out;
    out.reserve(item_graph_format::header_bytes + 8 * (n + 1) + 8 * m + 4);
    byte_writer w(out);
    for (char c : item_graph_format::magic) w.u8(static_cast<std::uint8_t>(c));  // (not bytes(): a GCC 12 false warning)
    w.u32(item_graph_format::version);
    w.u32(0);
    w.u64(n);
    w.u64(m);
    for (std::uint64_t o : g.offsets()) w.u64(o);
    for (std::uint32_t v : g.neighbor_array()) w.u32(v);
    for (float x : g.weight_array()) w.f32(x);
    w.finish();
    return out;
}

inline item_graph deserialize_item_graph(span<const std::uint8_t> bytes) {
    byte_reader r(bytes, "item_graph file");
    const std::size_t size = bytes.size();
    r.expect_magic(item_graph_format::magic, 8, "POEMGRPH item graph");
    const std::uint32_t version = r.u32("format version");
    check(version != 1, "item_graph file: format version 1 at byte offset 8 is no longer read (this build reads version ",
          item_graph_format::version, "): rebuild or re-save the graph");
    check(version == item_graph_format::version, "item_graph file: unsupported format version ", version,
          " at byte offset 8 (expected ", item_graph_format::version, ")");
    const std::uint32_t reserved = r.u32("reserved");
    check(reserved == 0, "item_graph file: reserved field at byte offset 12 is ", reserved, ", expected 0");
    const std::uint64_t n = r.u64("item count");
    const std::uint64_t m = r.u64("edge count");
    check(n <= item_graph::max_items, "item_graph file: item count ", n, " at byte offset 16 is too large");
    // Sizes must match the length exactly (checked without overflow: m is bounded by the size).
    check(m <= size / 8, "item_graph file: edge count ", m, " at byte offset 24 does not fit a file of ", size, " bytes");
    const std::uint64_t expected = item_graph_format::header_bytes + 8 * (n + 1) + 8 * m + 4;
    check(size == expected, "item_graph file: ", size, " bytes, but item count ", n, " (byte offset 16) and edge count ",
          m, " (byte offset 24) need ", expected, " (truncated or trailing bytes at byte offset ",
          std::min<std::uint64_t>(size, expected), ")");

    detail::big_vector<std::uint64_t> offsets(static_cast<std::size_t>(n + 1));
    detail::big_vector<std::uint32_t> neighbors(static_cast<std::size_t>(m));
    detail::big_vector<float> weights(static_cast<std::size_t>(m));
    for (std::size_t i = 0; i <= n; ++i) {
        const std::size_t at = r.offset();
        const std::uint64_t o = r.u64("offsets");
        if (i == 0) check(o == 0, "item_graph file: offsets[0] at byte offset ", at, " is ", o, ", expected 0");
        else
            check(o >= offsets[i - 1] && o <= m, "item_graph file: offsets[", i, "] = ", o, " at byte offset ", at,
                  " is not monotone within [", offsets[i - 1], ", ", m, "]");
        offsets[i] = o;
    }
    check(offsets[n] == m, "item_graph file: offsets[", n, "] = ", offsets[n], " at byte offset ",
          item_graph_format::header_bytes + 8 * n, " differs from the edge count ", m);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::uint64_t e = offsets[i]; e < offsets[i + 1]; ++e) {
            const std::size_t at = r.offset();
            const std::uint32_t v = r.u32("neighbours");
            check(v < n, "item_graph file: neighbour ", v, " at byte offset ", at, " is not below the item count ", n);
            check(e == offsets[i] || neighbors[e - 1] < v, "item_graph file: neighbour ", v, " at byte offset ", at,
                  " is not above the previous one of its row");
            neighbors[e] = v;
        }
    }
    for (std::size_t e = 0; e < m; ++e) {
        const std::size_t at = r.offset();
        const float w = r.f32("weights");
        check(std::isfinite(w) && w > 0.0f, "item_graph file: weight ", w, " at byte offset ", at,
              " is not finite and > 0");
        weights[e] = w;
    }
    r.verify_crc32();
    r.expect_end();
    return item_graph(std::move(offsets), std::move(neighbors), std::move(weights));
}

inline void save_item_graph(const item_graph& g, const std::string& path) {
    const auto bytes = serialize_item_graph(g);
    write_file_atomically(path, span<const std::uint8_t>(bytes.data(), bytes.size()), "save_item_graph");
}

inline item_graph load_item_graph(const std::string& path) {
    const std::vector<std::uint8_t> bytes = read_file(path, "load_item_graph");
    try {
        return deserialize_item_graph({bytes.data(), bytes.size()});
    } catch (const error& e) {
        throw error(std::string(e.what()) + " (file " + path + ")");
    }
}

}  // namespace poem
