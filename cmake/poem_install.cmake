include(CMakePackageConfigHelpers)

install(TARGETS poem EXPORT poemTargets)
# poem::xtensor in an export set of its own: the package config loads it only when xtensor is found.
install(TARGETS poem_xtensor EXPORT poemXtensorTargets)
install(DIRECTORY include/poem DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(POEM_CMAKE_DIR ${CMAKE_INSTALL_DATADIR}/cmake/poem)
# Runtime dispatch is compiled by the consumer (its compiler, its flags): the package ships the sources
# and the function that builds poem::dispatch from them.
set(POEM_DISPATCH_SOURCE_DIR ${CMAKE_INSTALL_DATADIR}/poem/dispatch)
install(FILES src/dispatch/kernel_tables.hpp src/dispatch/select.cpp src/dispatch/target.cpp
        DESTINATION ${POEM_DISPATCH_SOURCE_DIR})
install(FILES cmake/poem_dispatch.cmake DESTINATION ${POEM_CMAKE_DIR})
install(EXPORT poemTargets NAMESPACE poem:: DESTINATION ${POEM_CMAKE_DIR})
install(EXPORT poemXtensorTargets NAMESPACE poem:: DESTINATION ${POEM_CMAKE_DIR})
configure_package_config_file(cmake/poemConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/poemConfig.cmake
                              INSTALL_DESTINATION ${POEM_CMAKE_DIR} PATH_VARS POEM_DISPATCH_SOURCE_DIR)
# Header-only: one package serves every architecture.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/poemConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/poemConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/poemConfigVersion.cmake
        DESTINATION ${POEM_CMAKE_DIR})
