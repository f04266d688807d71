#pragma once
// Umbrella header: every public header of poem.

#include "poem/core/error.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/span.hpp"
#include "poem/core/version.hpp"
#include "poem/core/workspace.hpp"
