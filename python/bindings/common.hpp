#pragma once
// Helpers shared by the binding translation units: numpy views in, numpy arrays out without copies.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <utility>
#include <vector>

#include "poem/core/span.hpp"

namespace poem_py {

namespace py = pybind11;

// A C-contiguous array of T: numpy passes it through when it already is one, else converts once.
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

void bind_fusion(py::module_& m);
void bind_model(py::module_& m);
void bind_order(py::module_& m);
void bind_sample(py::module_& m);
void bind_serve(py::module_& m);

}  // namespace poem_py
