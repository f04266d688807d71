#pragma once
// order/: every public header of the partial-order layer.

#include "poem/order/chrono.hpp"
#include "poem/order/level_selection.hpp"
#include "poem/order/level_config.hpp"
#include "poem/order/levels.hpp"
#include "poem/order/levels_result.hpp"
#include "poem/order/pareto.hpp"
#include "poem/order/state.hpp"
#include "poem/order/tiers.hpp"
