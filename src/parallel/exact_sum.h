// Sums of doubles over a tensor-parallel group that come out bit-identical on every rank and
// as exact as one rank's double arithmetic: the collectives carry floats, so each value
// travels as two floats (high and low parts), and every rank adds the gathered values in rank
// order. For the few per-row scalars of a metric or a statistic, not for activations.
#pragma once

#include <cstdint>

#include "parallel/collectives.h"

namespace causeway {

// data (n) = the sum over the group of every rank's data, in place.
void allreduce_sum_exact(const Collectives& group, double* data, int64_t n);

}  // namespace causeway
