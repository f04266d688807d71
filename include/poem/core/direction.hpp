#pragma once
// Which way an objective points: the one vocabulary of fusion (normalisation, ranks) and order
// (Pareto levels). Predicted click rate: higher is better. Predicted skip rate: lower.

namespace poem {

enum class direction { higher_is_better, lower_is_better };

}  // namespace poem
