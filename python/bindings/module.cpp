// The `poem` Python module: one submodule-free namespace mirroring the C++ API.
#include "common.hpp"

#include "poem/core/error.hpp"
#include "poem/core/version.hpp"

PYBIND11_MODULE(poem, m) {
    m.doc() = "poem: partial-order enhanced real-time sequential modelling primitives (C++ core)";
    m.attr("__version__") = POEM_VERSION_STRING;
    auto& error = pybind11::register_exception<poem::error>(m, "Error", PyExc_ValueError);
    // A wrong dtype: a TypeError, and a poem.Error so that `except poem.Error` sees every refusal.
    pybind11::register_exception<poem_py::dtype_error>(
        m, "DtypeError", pybind11::make_tuple(pybind11::handle(PyExc_TypeError), error));
    poem_py::bind_fusion(m);
    poem_py::bind_order(m);
    poem_py::bind_sample(m);
    poem_py::bind_model(m);
    poem_py::bind_serve(m);
}
