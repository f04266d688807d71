#pragma once
// Non-owning views over contiguous memory: the currency of poem's API (C++17 has no std::span).

#include <cstddef>
#include <type_traits>
#include <vector>

#include "poem/core/error.hpp"

namespace poem {

template <class T>
class span {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;

    constexpr span() noexcept = default;
    constexpr span(T* data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <class U, class A, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>>>
    span(std::vector<U, A>& v) noexcept : data_(v.data()), size_(v.size()) {}
    template <class U, class A, class = std::enable_if_t<std::is_convertible_v<const U (*)[], T (*)[]>>>
    span(const std::vector<U, A>& v) noexcept : data_(v.data()), size_(v.size()) {}
    template <class U, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>>>
    constexpr span(span<U> s) noexcept : data_(s.data()), size_(s.size()) {}

    constexpr T* data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T* begin() const noexcept { return data_; }
    constexpr T* end() const noexcept { return data_ + size_; }
    constexpr T& operator[](std::size_t i) const noexcept { return data_[i]; }
    constexpr span subspan(std::size_t offset, std::size_t count) const noexcept {
        return {data_ + offset, count};
    }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

template <class T, class A>
span(std::vector<T, A>&) -> span<T>;
template <class T, class A>
span(const std::vector<T, A>&) -> span<const T>;

// A rows x cols matrix, rows contiguous (row r starts at data + r * cols). For scores, rows are
// objectives and columns candidates: structure of arrays.
template <class T>
class matrix_view {
public:
    constexpr matrix_view() noexcept = default;
    constexpr matrix_view(T* data, std::size_t rows, std::size_t cols) noexcept
        : data_(data), rows_(rows), cols_(cols) {}
    template <class U, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>>>
    constexpr matrix_view(matrix_view<U> m) noexcept : data_(m.data()), rows_(m.rows()), cols_(m.cols()) {}

    constexpr T* data() const noexcept { return data_; }
    constexpr std::size_t rows() const noexcept { return rows_; }
    constexpr std::size_t cols() const noexcept { return cols_; }
    constexpr span<T> row(std::size_t r) const noexcept { return {data_ + r * cols_, cols_}; }
    constexpr T& operator()(std::size_t r, std::size_t c) const noexcept { return data_[r * cols_ + c]; }

private:
    T* data_ = nullptr;
    std::size_t rows_ = 0;
    std::size_t cols_ = 0;
};

// Throws unless `s` holds exactly `expected` elements; `what` names the argument.
template <class T>
inline void check_size(span<T> s, std::size_t expected, const char* what) {
    check(s.size() == expected, what, ": expected ", expected, " elements, got ", s.size());
}

}  // namespace poem
