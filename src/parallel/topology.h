// The rank layout of a job: world = dp x tp. Ranks of one tensor-parallel group hold one model
// replica between them; data-parallel groups split the work items.
#pragma once

#include <string>

#include "parallel/communicator.h"

namespace causeway {

struct Topology {
  int world_rank = 0, world_size = 1;
  int dp_rank = 0, dp_size = 1;  // which replica, of how many
  int tp_rank = 0, tp_size = 1;  // which shard of the replica, of how many
  MPI_Comm dp_comm = MPI_COMM_NULL;  // ranks with the same tp_rank, one per replica
  MPI_Comm tp_comm = MPI_COMM_NULL;  // the ranks of this replica

  // Splits `world` into replicas of `tp` consecutive ranks (consecutive ranks share a node
  // under the usual launchers, and tensor parallel needs the fastest links). `n_head` must be
  // divisible by tp; InputError names `source` otherwise.
  static Topology make(const Communicator& world, int tp, int n_head, const std::string& source);
  // Collective over `world`: whether every rank of this rank's tensor-parallel group runs on
  // the same node (MPI_COMM_TYPE_SHARED), where the group's allreduces stay off the network.
  bool tp_group_within_node(const Communicator& world) const;
  std::string describe() const;  // "4 ranks = 2 data-parallel x 2 tensor-parallel"
};

}  // namespace causeway
