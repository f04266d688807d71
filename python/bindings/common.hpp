#pragma once
// Helpers shared by the binding translation units: numpy views in, numpy arrays out without copies.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <pybind11/stl/filesystem.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "poem/core/error.hpp"
#include "poem/core/span.hpp"
#include "poem/order/engagement.hpp"

namespace poem_py {

namespace py = pybind11;

// A C-contiguous array of T. Built only by the *_arg helpers below (never a binding parameter: its
// forcecast would convert silently).
template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <class T>
poem::span<const T> view(const carray<T>& a) {
    return {a.data(), static_cast<std::size_t>(a.size())};
}

// K x N matrix view of a 2-D array; `what` names the argument in the error.
template <class T>
poem::matrix_view<const T> matrix(const carray<T>& a, const char* what) {
    poem::check(a.ndim() == 2, what, ": expected a 2-D array, got ", a.ndim(), " dimensions");
    return {a.data(), static_cast<std::size_t>(a.shape(0)), static_cast<std::size_t>(a.shape(1))};
}

// ---------------------------------------------------------------------------------------------------
// Array arguments: refuse, do not guess. Every array a binding takes goes through one of int_arg,
// float_arg, mask_arg or record_arg, which inspect the dtype of what Python passed (anything np.asarray
// accepts: arrays, lists, scalars) and either return a C-contiguous array of the C++ type (no copy when
// it already is one) or raise, naming the argument, its dtype and its shape:
//   - a wrong dtype kind (floats for integers, bools or floats for ids, objects, strings) raises
//     poem.DtypeError, a subclass of both TypeError and poem.Error;
//   - a wrong number of dimensions or a value the C++ type cannot hold exactly raises poem.Error.
// Safe widenings, stated in the docstrings (docs/conventions.md "Python arguments"):
//   - integers: an integer array of any width and sign when every value fits the target type (ids:
//     none negative; counts and indices: within the target's range);
//   - floats: float16, float32 as is; float64 into float32 rounds to the nearest float32, and a finite
//     value beyond float32's range (|x| > 3.4028235e38) is refused rather than becoming infinity; NaN
//     and infinities pass through (the library ranks them last). An integer array is accepted where
//     floats are expected when every value converts exactly.
//   - masks: bool, or an integer array holding only 0 and 1.
//   - a 0-d value (a Python scalar) counts as a 1-element array where a 1-D array is expected, and an
//     empty array of any numeric dtype is accepted (np.asarray([]) is float64).

// The rules as docstring sentences.
#define FLOAT_RULE                                                                                              \
    "Float arrays: float32 as is; float16 widens exactly; float64 rounds to the nearest float32 (a finite "     \
    "value beyond float32's range is refused, never made infinite); integer arrays only when every value is "  \
    "exact in float32. Other dtypes raise poem.DtypeError (a TypeError), a wrong shape poem.Error."
#define ID_RULE                                                                                                 \
    "Item ids (uint64): any integer array (int32, int64, uint32, ...) with no negative value; floats and bools " \
    "raise poem.DtypeError (a TypeError), negative ids poem.Error."
#define INDEX_RULE                                                                                              \
    "Counts, levels and indices: any integer array whose values all fit the target type (checked); floats "    \
    "raise poem.DtypeError (a TypeError), out-of-range values poem.Error."
#define MASK_RULE                                                                                               \
    "Masks and flags: bool, or an integer array holding only 0 and 1 (0.5 or 256 is refused)."

// Raised for a wrong dtype: poem.DtypeError (TypeError and poem.Error).
class dtype_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

inline std::string shape_string(const py::array& a) {
    std::ostringstream s;
    s << '(';
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s << (d ? ", " : "") << a.shape(d);
    s << (a.ndim() == 1 ? ",)" : ")");
    return s.str();
}

inline std::string describe(const py::array& a) {
    return std::string(py::str(a.dtype())) + " of shape " + shape_string(a);
}

template <class... Args>
[[noreturn]] void type_fail(Args&&... args) {
    std::ostringstream s;
    (s << ... << args);
    throw dtype_error(s.str());
}

template <class T>
const char* type_name() {
    if constexpr (std::is_same_v<T, bool>) return "bool";
    else if constexpr (std::is_same_v<T, float>) return "float32";
    else if constexpr (std::is_same_v<T, double>) return "float64";
    else if constexpr (std::is_same_v<T, std::uint8_t>) return "uint8";
    else if constexpr (std::is_same_v<T, std::uint32_t>) return "uint32";
    else if constexpr (std::is_same_v<T, std::uint64_t>) return "uint64";
    else if constexpr (std::is_same_v<T, std::int32_t>) return "int32";
    else if constexpr (std::is_same_v<T, std::int64_t>) return "int64";
    else return "?";
}

// The argument as a numpy array (np.asarray semantics), its dimensions checked: `ndim` 1 also takes a
// 0-d value as one element.
inline py::array as_array(py::handle obj, const char* name, int ndim) {
    py::array a;
    if (py::isinstance<py::array>(obj)) {
        a = py::reinterpret_borrow<py::array>(obj);
    } else {
        a = py::array::ensure(obj);
        if (!a) type_fail(name, ": expected an array, got ", std::string(py::str(py::type::of(obj).attr("__name__"))));
    }
    if (a.ndim() == 0 && ndim == 1) a = a.reshape({py::ssize_t{1}});
    // describe() formats the dtype through numpy (microseconds): only on the way to the error.
    if (a.ndim() != ndim) poem::check(false, name, ": expected a ", ndim, "-D array, got ", describe(a));
    return a;
}

inline bool same_dtype(const py::array& a, const py::dtype& t) {
    return py::detail::npy_api::get().PyArray_EquivTypes_(a.dtype().ptr(), t.ptr());
}

template <class T>
carray<T> exact(const py::array& a) {
    return carray<T>::ensure(a);  // same dtype: a copy only when not C-contiguous
}

// `src` (C-contiguous, wide type W) copied into a new array of T with a's shape, each value checked.
template <class T, class W, class Check>
carray<T> narrow(const py::array& a, Check ok) {
    const auto src = carray<W>::ensure(a);
    std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
    carray<T> out(shape);
    const W* s = src.data();
    T* d = out.mutable_data();
    for (py::ssize_t i = 0, n = src.size(); i < n; ++i) {
        ok(s[i], i);
        d[i] = static_cast<T>(s[i]);
    }
    return out;
}

// An integer argument of type T. Integer arrays of any width and sign whose values all fit T.
template <class T>
carray<T> int_arg(py::handle obj, const char* name, int ndim = 1) {
    static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
    const py::array a = as_array(obj, name, ndim);
    if (same_dtype(a, py::dtype::of<T>())) return exact<T>(a);
    const char kind = a.dtype().kind();
    if (kind != 'i' && kind != 'u') {
        if (a.size() == 0 && (kind == 'f' || kind == 'b')) return carray<T>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
        type_fail(name, ": expected an integer array (", type_name<T>(), "), got ", describe(a));
    }
    using lim = std::numeric_limits<T>;
    auto range = [&](auto v, py::ssize_t i) {
        if constexpr (std::is_signed_v<decltype(v)>) {
            if (v < 0 && std::is_unsigned_v<T>) poem::check(false, name, "[", i, "] = ", v, " is negative (", type_name<T>(), " expected)");
            poem::check(v >= static_cast<std::int64_t>(lim::min()) && (v < 0 || static_cast<std::uint64_t>(v) <= static_cast<std::uint64_t>(lim::max())),
                        name, "[", i, "] = ", v, " is out of range for ", type_name<T>());
        } else {
            poem::check(v <= static_cast<std::uint64_t>(lim::max()), name, "[", i, "] = ", v, " is out of range for ", type_name<T>());
        }
    };
    if (kind == 'i') return narrow<T, std::int64_t>(a, range);
    return narrow<T, std::uint64_t>(a, range);
}

// A floating-point argument of type T (float or double); see the rules above.
template <class T>
carray<T> float_arg(py::handle obj, const char* name, int ndim = 1) {
    static_assert(std::is_floating_point_v<T>);
    const py::array a = as_array(obj, name, ndim);
    if (same_dtype(a, py::dtype::of<T>())) return exact<T>(a);
    const char kind = a.dtype().kind();
    const auto size = a.dtype().itemsize();
    if (kind == 'f' && size <= static_cast<py::ssize_t>(sizeof(T))) return carray<T>::ensure(a);  // exact widening
    if (kind == 'f' && size == 8) {  // float64 -> float32: nearest, finite values beyond the range refused
        return narrow<T, double>(a, [&](double v, py::ssize_t i) {
            poem::check(!(std::fabs(v) > static_cast<double>(std::numeric_limits<T>::max())) || !std::isfinite(v), name,
                        "[", i, "] = ", v, " is beyond the range of ", type_name<T>());
        });
    }
    auto exact_int = [&](auto v, py::ssize_t i) {
        const T f = static_cast<T>(v);
        const bool ok = f > -9.2e18 && f < 9.2e18 && static_cast<decltype(v)>(f) == v;
        poem::check(ok, name, "[", i, "] = ", v, " has no exact ", type_name<T>(), " value");
    };
    if (kind == 'i') return narrow<T, std::int64_t>(a, exact_int);
    if (kind == 'u') return narrow<T, std::uint64_t>(a, exact_int);
    if (a.size() == 0 && kind == 'b') return carray<T>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
    type_fail(name, ": expected a float array (", type_name<T>(), "; float16, float32, float64 or exact integers), got ",
              describe(a));
}

// A 0/1 mask of type T (bool or uint8): bool, or integers holding only 0 and 1.
template <class T>
carray<T> mask_arg(py::handle obj, const char* name, int ndim = 1) {
    const py::array a = as_array(obj, name, ndim);
    const char kind = a.dtype().kind();
    if (kind == 'b') {
        if constexpr (std::is_same_v<T, bool>) return exact<T>(a);
        else return carray<T>::ensure(a);  // bool -> 0/1
    }
    if (kind != 'i' && kind != 'u') {
        if (a.size() == 0 && kind == 'f') return carray<T>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
        type_fail(name, ": expected a mask (bool, or integers 0/1), got ", describe(a));
    }
    auto zero_one = [&](auto v, py::ssize_t i) {
        poem::check(v == 0 || v == 1, name, "[", i, "] = ", v, " is not 0 or 1 (a mask)");
    };
    if (kind == 'i') return narrow<T, std::int64_t>(a, zero_one);
    return narrow<T, std::uint64_t>(a, zero_one);
}

// A 1-D record array of exactly `dtype` (no field is converted).
template <class T>
py::array_t<T, py::array::c_style> record_arg(py::handle obj, const char* name, const char* dtype_name) {
    const py::array a = as_array(obj, name, 1);
    if (!same_dtype(a, py::dtype::of<T>()))
        type_fail(name, ": expected a record array of ", dtype_name, ", got ", describe(a));
    return py::array_t<T, py::array::c_style>::ensure(a);
}

template <class T>
poem::span<const T> view(const py::array_t<T, py::array::c_style>& a) {
    return {a.data(), static_cast<std::size_t>(a.size())};
}

// A float config field given as a Python float: finite values beyond float32's range are refused.
inline float float_field(double v, const char* name) {
    poem::check(!(std::isfinite(v) && std::fabs(v) > static_cast<double>(std::numeric_limits<float>::max())), name,
                " = ", v, " is beyond the range of float32");
    return static_cast<float>(v);
}

// Bytes of any bytes-like object (bytes, bytearray, memoryview), without a copy; `info` keeps the
// export alive (a bytearray cannot be resized meanwhile).
inline poem::span<const std::uint8_t> bytes_view(const py::buffer& b, py::buffer_info& info, const char* name = "data") {
    info = b.request();
    poem::check(info.ndim <= 1 && (info.ndim == 0 || info.strides[0] == info.itemsize), name,
                ": expected contiguous bytes");
    return {static_cast<const std::uint8_t*>(info.ptr), static_cast<std::size_t>(info.size * info.itemsize)};
}

// Moves a vector into a numpy array that owns it (no copy of the elements).
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape = {}) {
    auto* owned = new std::vector<T>(std::move(v));
    py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    if (shape.empty()) shape = {static_cast<py::ssize_t>(owned->size())};
    return py::array_t<T>(shape, owned->data(), free_when_done);
}

// Copies a vector into a new numpy array (for results that must outlive a reused C++ buffer).
template <class T>
py::array_t<T> copy_numpy(const std::vector<T>& v) {
    py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
}

// Engagement events from parallel arrays, one event per entry (1-D, one length; `time` may be None:
// events without a time), each stamped with `user_id`. Messages name `fn` and the argument.
inline std::vector<poem::engagement_event> engagement_events(std::uint64_t user_id, const py::object& item,
                                                             const py::object& time, const py::object& play_time,
                                                             const py::object& duration, const py::object& click,
                                                             const py::object& like, const py::object& follow,
                                                             const std::string& fn, const char* item_name = "item") {
    const auto items = int_arg<std::uint64_t>(item, (fn + ": " + item_name).c_str());
    const std::size_t n = static_cast<std::size_t>(items.size());
    auto sized = [&](auto a, const char* name) {
        poem::check(static_cast<std::size_t>(a.size()) == n, fn, ": ", name, " holds ", a.size(), " entries, ", item_name,
                    " ", n);
        return a;
    };
    const auto times = time.is_none() ? carray<std::int64_t>(static_cast<py::ssize_t>(n))
                                      : sized(int_arg<std::int64_t>(time, (fn + ": time").c_str()), "time");
    const auto play = sized(float_arg<float>(play_time, (fn + ": play_time").c_str()), "play_time");
    const auto dur = sized(float_arg<float>(duration, (fn + ": duration").c_str()), "duration");
    const auto c = sized(mask_arg<bool>(click, (fn + ": click").c_str()), "click");
    const auto l = sized(mask_arg<bool>(like, (fn + ": like").c_str()), "like");
    const auto f = sized(mask_arg<bool>(follow, (fn + ": follow").c_str()), "follow");
    std::vector<poem::engagement_event> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        poem::engagement_event& e = out[i];
        e.user_id = user_id;
        e.item_id = items.data()[i];
        e.time = time.is_none() ? 0 : times.data()[i];
        e.play_time = play.data()[i];
        e.duration = dur.data()[i];
        e.click = c.data()[i];
        e.like = l.data()[i];
        e.follow = f.data()[i];
    }
    return out;
}

void bind_fusion(py::module_& m);
void bind_model(py::module_& m);
void bind_order(py::module_& m);
void bind_sample(py::module_& m);
void bind_serve(py::module_& m);

}  // namespace poem_py
