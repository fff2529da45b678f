#include "parallel/topology.h"

#include "core/error.h"

namespace causeway {

Topology Topology::make(const Communicator& world, int tp, int n_head, const std::string& source) {
  if (tp < 1) throw InputError(source, "parallel.tp", "must be at least 1");
  if (world.size() % tp != 0)
    throw InputError(source, "parallel.tp",
                     std::to_string(tp) + " does not divide the " + std::to_string(world.size()) +
                         " ranks of the job");
  if (n_head % tp != 0)
    throw InputError(source, "parallel.tp",
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

std::string Topology::describe() const {
  return std::to_string(world_size) + " rank" + (world_size == 1 ? "" : "s") + " = " +
         std::to_string(dp_size) + " data-parallel x " + std::to_string(tp_size) +
         " tensor-parallel";
}

}  // namespace causeway
