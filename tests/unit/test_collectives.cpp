// The tensor-parallel collectives over MPI with sums, maxima and gathers known by hand. Run as
// a plain test (one rank) and under mpiexec with 3 ranks (tests/mpi/CMakeLists.txt).
#include <gtest/gtest.h>

#include <vector>

#include "parallel/collectives.h"
#include "parallel/communicator.h"

namespace causeway {
namespace {

const Collectives& world() {
  static MpiSession session(nullptr, nullptr);
  static std::unique_ptr<Collectives> c = make_mpi_collectives(MPI_COMM_WORLD);
  return *c;
}

TEST(Collectives, AllreduceSumsAndMaxima) {
  const Collectives& c = world();
  const int r = c.rank(), n = c.size();
  std::vector<float> x = {1.0f, static_cast<float>(r), static_cast<float>(r * r), -1.0f * r};
  c.allreduce_sum(x.data(), 3);  // the last element is left alone
  EXPECT_EQ(x[0], static_cast<float>(n));
  EXPECT_EQ(x[1], static_cast<float>(n * (n - 1) / 2));
  EXPECT_EQ(x[2], static_cast<float>((n - 1) * n * (2 * n - 1) / 6));
  EXPECT_EQ(x[3], -1.0f * r);
  std::vector<float> y = {static_cast<float>(r), static_cast<float>(-r)};
  c.allreduce_max(y.data(), 2);
  EXPECT_EQ(y[0], static_cast<float>(n - 1));
  EXPECT_EQ(y[1], 0.0f);
}

TEST(Collectives, AllgatherPutsBlocksInRankOrder) {
  const Collectives& c = world();
  const int r = c.rank(), n = c.size();
  const std::vector<float> mine = {10.0f * r, 10.0f * r + 1};
  std::vector<float> all(2 * n, -1.0f);
  c.allgather(mine.data(), 2, all.data());
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(all[2 * i], 10.0f * i);
    EXPECT_EQ(all[2 * i + 1], 10.0f * i + 1);
  }
}

TEST(Collectives, BroadcastFromEveryRoot) {
  const Collectives& c = world();
  for (int root = 0; root < c.size(); ++root) {
    std::vector<float> x = {static_cast<float>(c.rank()), 7.0f};
    c.broadcast(x.data(), 2, root);
    EXPECT_EQ(x[0], static_cast<float>(root));
    EXPECT_EQ(x[1], 7.0f);
  }
}

}  // namespace
}  // namespace causeway
