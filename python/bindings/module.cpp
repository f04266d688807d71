// The `poem` Python module: one submodule-free namespace mirroring the C++ API.
#include "common.hpp"

#include <string>

#include "poem/core/dispatch.hpp"
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
    // The SIMD target the kernels run (core/dispatch.hpp): chosen at import from the CPU and POEM_SIMD.
    m.def("simd_target", [] { return std::string(poem::simd_target()); },
          "The SIMD target poem's kernels run: 'avx512', 'avx2', 'sse2' or 'scalar'. Raises poem.Error when the "
          "POEM_SIMD environment variable names a target that cannot run here.");
    m.def("set_simd_target", &poem::set_simd_target, pybind11::arg("name"),
          "Run poem's kernels on `name` from now on (one of simd_targets()); raises poem.Error otherwise.");
    m.def("simd_targets", &poem::simd_targets, "The SIMD targets this build has and this CPU runs, best first.");
#ifdef POEM_DISPATCH
    m.attr("SIMD_DISPATCH") = true;
#else
    m.attr("SIMD_DISPATCH") = false;
#endif
    // A POEM_SIMD that cannot run fails the import, naming the variable, rather than running other kernels
    // than the operator asked for.
    (void)poem::simd_target();
}
