#include "parallel/topology.h"

#include "core/error.h"

namespace causeway {

Topology Topology::make(const Communicator& world, int tp, int n_head, const std::string& source) {
  // A command-line flag (--tp) is its own field; a config names its key.
  const std::string field = source.starts_with("--") ? "" : "parallel.tp";
  if (tp < 1) throw InputError(source, field, "must be at least 1");
  if (world.size() % tp != 0)
    throw InputError(source, field,
                     std::to_string(tp) + " does not divide the " + std::to_string(world.size()) +
                         " ranks of the job");
  if (n_head % tp != 0)
    throw InputError(source, field,
                     std::to_string(tp) + " does not divide the model's " + std::to_string(n_head) +
                         " attention heads");
  Topology t;
  t.world_rank = world.rank();
  t.world_size = world.size();
  t.tp_size = tp;
  t.dp_size = world.size() / tp;
  t.tp_rank = world.rank() % tp;
  t.dp_rank = world.rank() / tp;
  MPI_Comm_split(world.comm(), t.dp_rank, t.tp_rank, &t.tp_comm);
  MPI_Comm_split(world.comm(), t.tp_rank, t.dp_rank, &t.dp_comm);
  return t;
}

bool Topology::tp_group_within_node(const Communicator& world) const {
  MPI_Comm node;
  MPI_Comm_split_type(world.comm(), MPI_COMM_TYPE_SHARED, world.rank(), MPI_INFO_NULL, &node);
  // A node is named by its lowest world rank; the group is on one node when all names agree.
  int name = world.rank(), lowest = 0, highest = 0;
  MPI_Allreduce(&name, &lowest, 1, MPI_INT, MPI_MIN, node);
  MPI_Comm_free(&node);
  MPI_Allreduce(&lowest, &name, 1, MPI_INT, MPI_MIN, tp_comm);
  MPI_Allreduce(&lowest, &highest, 1, MPI_INT, MPI_MAX, tp_comm);
  return name == highest;
}

std::string Topology::describe() const {
  return std::to_string(world_size) + " rank" + (world_size == 1 ? "" : "s") + " = " +
         std::to_string(dp_size) + " data-parallel x " + std::to_string(tp_size) +
         " tensor-parallel";
}

}  // namespace causeway
