#pragma once
// A pass over JSON text from a file before it is parsed into a tree: refuses nesting deeper than a
// bound (a tree parser recurses, and so does its destructor) and a key that appears twice in one object
// (a tree parser silently keeps the last). One SAX pass: time and memory linear in the text. The
// readers of poem's JSON (safetensors headers, the model config, the serving config) call it first.
//
// nlohmann's own parser callback cannot do this in linear time: it rescans an object's entries each
// time a child closes (quadratic in the number of entries).

#include <cstddef>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "poem/core/error.hpp"

namespace poem::detail {

class json_guard {
public:
    using json = nlohmann::json;

    // Throws poem::error("poem: <what>: ...") unless `text` is one JSON value nested at most
    // `max_depth` containers deep (a scalar is depth 0, [1] is 1) with unique keys per object.
    static void check(const char* first, const char* last, int max_depth, const std::string& what) {
        json_guard g(max_depth, what);
        json::sax_parse(first, last, &g);
    }
    static void check(const std::string& text, int max_depth, const std::string& what) {
        check(text.data(), text.data() + text.size(), max_depth, what);
    }

    // The SAX interface (nlohmann::json_sax).
    bool null() { return true; }
    bool boolean(bool) { return true; }
    bool number_integer(json::number_integer_t) { return true; }
    bool number_unsigned(json::number_unsigned_t) { return true; }
    bool number_float(json::number_float_t, const json::string_t&) { return true; }
    bool string(json::string_t&) { return true; }
    bool binary(json::binary_t&) { return true; }
    bool start_object(std::size_t) {
        open();
        keys_.emplace_back();
        return true;
    }
    bool key(json::string_t& k) {
        if (!keys_.back().insert(k).second)
            fail("poem: ", what_, ": key '", clip(k), "' appears more than once in one object");
        return true;
    }
    bool end_object() {
        keys_.pop_back();
        --depth_;
        return true;
    }
    bool start_array(std::size_t) {
        open();
        return true;
    }
    bool end_array() {
        --depth_;
        return true;
    }
    bool parse_error(std::size_t at, const std::string&, const nlohmann::detail::exception& e) {
        fail("poem: ", what_, " is invalid at byte ", at, ": ", clip(e.what(), 160));
    }

private:
    json_guard(int max_depth, const std::string& what) : max_depth_(max_depth), what_(what) {}
    void open() {
        if (++depth_ > max_depth_) fail("poem: ", what_, ": nested deeper than ", max_depth_, " levels");
    }
    int max_depth_;
    int depth_ = 0;
    const std::string& what_;
    std::vector<std::unordered_set<std::string>> keys_;
};

}  // namespace poem::detail
