#pragma once
// A validating reader for safetensors files: the format poem's PyTorch reference exports to.
//
// Layout: an 8-byte little-endian header length n, n bytes of JSON header, then the data buffer. The
// header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative
// to the buffer), and may hold "__metadata__", an object of string -> string.
//
// Everything is checked before any tensor is used: the header length against the file size, the JSON
// (nested at most max_depth deep, and no key twice in one object: a JSON parser would silently keep
// the last duplicate), dtype (F32, F16 and BF16 only), shape (non-negative integers whose product times
// the dtype size equals the offsets' span, without overflow), offsets inside the buffer, and the
// tensors tiling the buffer exactly (no overlap, no gap, no trailing bytes). Each failure throws
// poem::error naming the source, and the tensor or the byte offset; names and values quoted in a
// message are cut to a few dozen characters. Time and memory are linear in the file's size.
//
// The file is read once into one buffer; tensor views point into it (no copy). `to_f32` converts a
// tensor of any supported dtype to float32 and refuses one that holds NaN or an infinity (poem reads
// weights, and a non-finite weight is a broken export).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "poem/core/error.hpp"
#include "poem/core/file.hpp"
#include "poem/core/span.hpp"
#include "poem/model/detail/json_guard.hpp"

namespace poem {

enum class st_dtype { f32, f16, bf16 };

inline const char* to_string(st_dtype d) noexcept {
    switch (d) {
        case st_dtype::f32: return "F32";
        case st_dtype::f16: return "F16";
        default: return "BF16";
    }
}
inline std::size_t dtype_size(st_dtype d) noexcept { return d == st_dtype::f32 ? 4 : 2; }

// IEEE binary16 -> binary32, exact (subnormals, infinities and NaN included).
inline float half_to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1Fu;
    std::uint32_t mant = h & 0x3FFu;
    std::uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {  // subnormal: normalise
        std::uint32_t e = 113;
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            --e;
        }
        bits = sign | (e << 23) | ((mant & 0x3FFu) << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// bfloat16 -> binary32: the top half of the float's bits.
inline float bf16_to_float(std::uint16_t h) noexcept {
    const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

struct st_tensor {
    std::string name;
    st_dtype dtype = st_dtype::f32;
    std::vector<std::size_t> shape;
    std::size_t begin = 0;  // absolute byte offsets in the file
    std::size_t end = 0;

    std::size_t numel() const noexcept {
        std::size_t n = 1;
        for (auto s : shape) n *= s;
        return n;
    }
};

// A shape as messages print it: [2, 3].
inline std::string shape_string(const std::vector<std::size_t>& s) {
    std::string r = "[";
    for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}

class safetensors_file {
public:
    // Largest header accepted (the reference implementation's limit is 100 MB).
    static constexpr std::uint64_t max_header = 100u << 20;
    // Deepest JSON nesting accepted: header object > tensor entry > shape array.
    static constexpr int max_depth = 3;

    // Reads and validates the file at `path`.
    static safetensors_file open(const std::string& path) {
        const std::vector<std::uint8_t> bytes = read_file(path, "safetensors");
        return from_bytes(bytes.data(), bytes.size(), path);
    }

    // Validates a file held in memory (copied); `source` names it in error messages.
    static safetensors_file from_bytes(const void* data, std::size_t size, std::string source = "<memory>") {
        const auto* p = static_cast<const std::byte*>(data);
        return safetensors_file(std::vector<std::byte>(p, p + size), std::move(source));
    }

    const std::string& source() const noexcept { return source_; }
    std::size_t file_size() const noexcept { return bytes_.size(); }
    std::size_t data_start() const noexcept { return data_start_; }
    const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
    const std::vector<st_tensor>& tensors() const noexcept { return tensors_; }  // by name

    const st_tensor* find(const std::string& name) const noexcept {
        auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                                   [](const st_tensor& t, const std::string& n) { return t.name < n; });
        return it != tensors_.end() && it->name == name ? &*it : nullptr;
    }
    const st_tensor& at(const std::string& name) const {
        const st_tensor* t = find(name);
        check(t != nullptr, "safetensors '", source_, "': tensor '", name, "' is missing");
        return *t;
    }
    // The tensor's raw bytes, in the file's buffer (no copy).
    span<const std::byte> bytes(const st_tensor& t) const noexcept {
        return {bytes_.data() + t.begin, t.end - t.begin};
    }
    // The tensor as float32, converted from its dtype; poem::error names the tensor and the first
    // element that is NaN or infinite.
    std::vector<float> to_f32(const st_tensor& t) const {
        const std::size_t n = t.numel();
        std::vector<float> out(n);
        const std::byte* p = bytes_.data() + t.begin;
        if (t.dtype == st_dtype::f32) {
            if (n) std::memcpy(out.data(), p, n * 4);
        } else {
            for (std::size_t i = 0; i < n; ++i) {
                std::uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                out[i] = t.dtype == st_dtype::f16 ? half_to_float(h) : bf16_to_float(h);
            }
        }
        for (std::size_t i = 0; i < n; ++i)
            if (!std::isfinite(out[i]))
                fail("tensor '", brief(t.name), "' holds a non-finite value (", out[i], ") at element ", i,
                     " (file offset ", t.begin + i * dtype_size(t.dtype), ")");
        return out;
    }
    std::vector<float> to_f32(const std::string& name) const { return to_f32(at(name)); }

private:
    safetensors_file(std::vector<std::byte> bytes, std::string source)
        : bytes_(std::move(bytes)), source_(std::move(source)) {
        parse();
    }

    template <class... Parts>
    [[noreturn]] void fail(Parts&&... parts) const {
        detail::fail("poem: safetensors '", source_, "': ", std::forward<Parts>(parts)...);
    }

    static std::string brief(const std::string& s) { return detail::clip(s); }
    static std::string brief(const nlohmann::json& j) {
        if (j.is_array() && j.size() > 8) return "[" + std::to_string(j.size()) + " entries]";
        return detail::clip(j.dump());  // nested at most max_depth deep (json_guard): no deep recursion
    }

    static bool as_size(const nlohmann::json& j, std::size_t& out) {
        if (!j.is_number_unsigned()) return false;
        const auto v = j.get<std::uint64_t>();
        if (v > std::numeric_limits<std::size_t>::max()) return false;
        out = static_cast<std::size_t>(v);
        return true;
    }

    void parse() {
        using nlohmann::json;
        const std::size_t size = bytes_.size();
        if (size < 8) fail("file is ", size, " bytes, too short for the 8-byte header length at offset 0");
        std::uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<std::uint8_t>(bytes_[static_cast<std::size_t>(i)]);
        if (n > size - 8)
            fail("header length ", n, " (bytes 0..7) runs past the end of the file (", size, " bytes)");
        if (n > max_header) fail("header length ", n, " (bytes 0..7) exceeds the limit of ", max_header);
        if (n < 2) fail("header length ", n, " (bytes 0..7) is too short for a JSON object");
        data_start_ = 8 + static_cast<std::size_t>(n);

        const char* first = reinterpret_cast<const char*>(bytes_.data()) + 8;
        // Nesting and duplicate keys first, in one linear pass: the tree parser below then neither
        // recurses deeply nor drops a duplicate.
        detail::json_guard::check(first, first + n, max_depth,
                                  "safetensors '" + source_ + "': header JSON (bytes 8.." + std::to_string(8 + n) + ")");
        const json header = json::parse(first, first + n, nullptr, /*allow_exceptions=*/false);
        if (header.is_discarded()) fail("header JSON (bytes 8..", 8 + n, ") is invalid");
        if (!header.is_object()) fail("header JSON (bytes 8..", 8 + n, ") is not an object");

        const std::size_t buffer = size - data_start_;
        for (auto it = header.begin(); it != header.end(); ++it) {
            const std::string& name = it.key();
            const std::string shown = brief(name);
            const json& v = it.value();
            if (name == "__metadata__") {
                if (!v.is_object()) fail("__metadata__ is not an object");
                for (auto m = v.begin(); m != v.end(); ++m) {
                    if (!m.value().is_string()) fail("__metadata__ entry '", brief(m.key()), "' is not a string");
                    metadata_[m.key()] = m.value().get<std::string>();
                }
                continue;
            }
            if (!v.is_object()) fail("tensor '", shown, "': entry is not an object");
            st_tensor t;
            t.name = name;
            const auto d = v.find("dtype");
            if (d == v.end() || !d->is_string()) fail("tensor '", shown, "': no dtype string");
            const auto& ds = d->get_ref<const std::string&>();
            if (ds == "F32") t.dtype = st_dtype::f32;
            else if (ds == "F16") t.dtype = st_dtype::f16;
            else if (ds == "BF16") t.dtype = st_dtype::bf16;
            else fail("tensor '", shown, "': unsupported dtype '", ds, "' (F32, F16 and BF16 are read)");

            const auto s = v.find("shape");
            if (s == v.end() || !s->is_array()) fail("tensor '", shown, "': no shape array");
            std::size_t numel = 1;
            bool overflow = false;
            for (const auto& e : *s) {
                std::size_t dim;
                if (!as_size(e, dim)) fail("tensor '", shown, "': shape entry ", brief(e), " is not a non-negative integer");
                if (dim != 0 && numel > std::numeric_limits<std::size_t>::max() / dim) overflow = true;
                numel *= dim;
                t.shape.push_back(dim);
            }
            if (overflow) fail("tensor '", shown, "': shape ", brief(*s), " overflows");
            const std::size_t es = dtype_size(t.dtype);
            if (numel > std::numeric_limits<std::size_t>::max() / es) fail("tensor '", shown, "': shape ", brief(*s), " overflows");

            const auto o = v.find("data_offsets");
            std::size_t b = 0, e = 0;
            if (o == v.end() || !o->is_array() || o->size() != 2 || !as_size((*o)[0], b) || !as_size((*o)[1], e))
                fail("tensor '", shown, "': data_offsets is not a pair of non-negative integers");
            if (b > e) fail("tensor '", shown, "': data_offsets [", b, ", ", e, "] are reversed");
            if (e > buffer)
                fail("tensor '", shown, "': data_offsets [", b, ", ", e, "] run past the data buffer (", buffer,
                     " bytes, file offset ", data_start_, "..", size, ")");
            if (e - b != numel * es)
                fail("tensor '", shown, "': shape ", brief(*s), " of ", to_string(t.dtype), " needs ", numel * es,
                     " bytes, data_offsets [", b, ", ", e, "] hold ", e - b);
            t.begin = data_start_ + b;
            t.end = data_start_ + e;
            tensors_.push_back(std::move(t));
        }

        // The tensors tile the buffer: no two share a byte, and in offset order each starts where the
        // one before ends (empty tensors anywhere), the first at 0 and the last at the buffer's end.
        std::vector<const st_tensor*> by_offset;
        for (const auto& t : tensors_)
            if (t.begin != t.end) by_offset.push_back(&t);
        std::sort(by_offset.begin(), by_offset.end(), [](const st_tensor* a, const st_tensor* b) {
            return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
        });
        for (std::size_t i = 1; i < by_offset.size(); ++i)
            if (by_offset[i]->begin < by_offset[i - 1]->end)
                fail("tensors '", brief(by_offset[i - 1]->name), "' and '", brief(by_offset[i]->name),
                     "' overlap at buffer offset ", by_offset[i]->begin - data_start_);
        std::size_t at = data_start_;
        for (const st_tensor* t : by_offset) {
            if (t->begin > at)
                fail("buffer bytes ", at - data_start_, "..", t->begin - data_start_, " (file offset ", at,
                     ") belong to no tensor: a gap before '", brief(t->name), "'");
            at = t->end;
        }
        if (at != size)
            fail(size - at, " trailing bytes from file offset ", at, " belong to no tensor");
        std::sort(tensors_.begin(), tensors_.end(),
                  [](const st_tensor& a, const st_tensor& b) { return a.name < b.name; });
    }

    std::vector<std::byte> bytes_;
    std::string source_;
    std::size_t data_start_ = 0;
    std::map<std::string, std::string> metadata_;
    std::vector<st_tensor> tensors_;
};

}  // namespace poem
