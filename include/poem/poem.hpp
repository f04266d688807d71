#pragma once
// Umbrella header: every public header of poem, lower layers first, except poem/fusion/xtensor.hpp
// (fusion from xtensor expressions), which is included on its own with the CMake target poem::xtensor:
// this header and poem::poem need no xtensor.

#include "poem/core/bits.hpp"
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
#include "poem/order/order.hpp"
#include "poem/sample/alias.hpp"
#include "poem/sample/hard_negatives.hpp"
#include "poem/sample/hierarchical.hpp"
#include "poem/sample/item_graph.hpp"
#include "poem/sample/pair.hpp"
#include "poem/sample/walk.hpp"
#include "poem/loss/pairwise.hpp"
#include "poem/model/safetensors.hpp"
#include "poem/model/model.hpp"
#include "poem/serve/request_ranker.hpp"
