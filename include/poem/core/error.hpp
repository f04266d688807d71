#pragma once
// The one exception type poem throws, and the checks that raise it.
//
// Every message names what is wrong: the argument, the config field, or the file and byte offset.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace poem {

class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

// At most `max` characters of `s` for a message, then how long it was: a hostile name or value read
// from a file cannot make a huge message.
inline std::string clip(const std::string& s, std::size_t max = 48) {
    return s.size() <= max ? s : s.substr(0, max) + "...(" + std::to_string(s.size()) + " bytes)";
}

template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
    std::ostringstream os;
    (os << ... << std::forward<Parts>(parts));
    throw error(os.str());
}

}  // namespace detail

// Throws poem::error("poem: <parts...>") unless `ok`. The message is only built on failure.
template <class... Parts>
inline void check(bool ok, Parts&&... parts) {
    if (!ok) detail::fail("poem: ", std::forward<Parts>(parts)...);
}

// a * b for sizes that come from a caller's numbers; throws poem::error naming `what` when the
// product does not fit in std::size_t (a wrapped size would pass every later check).
inline std::size_t checked_mul(std::size_t a, std::size_t b, const char* what) {
    std::size_t r = 0;
    check(!__builtin_mul_overflow(a, b, &r), what, ": ", a, " x ", b, " overflows");
    return r;
}

}  // namespace poem
