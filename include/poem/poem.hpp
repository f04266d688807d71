#pragma once
// Umbrella header: every public header of poem.

#include "poem/core/error.hpp"
#include "poem/core/rng.hpp"
#include "poem/core/span.hpp"
#include "poem/core/version.hpp"
#include "poem/core/workspace.hpp"
#include "poem/fusion/fuse.hpp"
#include "poem/fusion/quintuple.hpp"
#include "poem/fusion/rank.hpp"
#include "poem/fusion/result.hpp"
#include "poem/fusion/spec.hpp"
