#pragma once
// Restores, on leaving a test, the SIMD target that was active when the test began. A test that walks
// every target (poem::set_simd_target) then leaves a binary rerun under POEM_SIMD=<target> on that
// target for the test cases after it, even when a REQUIRE fails (Catch throws) mid-walk.

#include <string>

#include "poem/core/dispatch.hpp"

class simd_target_scope {
public:
    simd_target_scope() : saved_(poem::simd_target()) {}
    simd_target_scope(const simd_target_scope&) = delete;
    simd_target_scope& operator=(const simd_target_scope&) = delete;
    ~simd_target_scope() { poem::set_simd_target(saved_); }

private:
    std::string saved_;
};
