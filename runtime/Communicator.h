//===- Communicator.h - the ranks of a data-parallel run --------*- C++ -*-===//
//
// Data-parallel training runs one process per device, a rank, each on its
// own slice of every global batch; the ranks average their gradients in
// the training step (the program's `collective` launches, Program.h) and
// sum the trainer's figures. A Communicator is that group of ranks.
//
// MPI starts the ranks (`mpirun -np 4 ./mlp-train`) and carries the
// collectives between them. The runtime loads Open MPI's library
// (libmpi.so.40) when a trainer finds itself launched by mpirun, as it
// loads the CUDA driver and NVRTC: trainers build and run without MPI, and
// only a trainer asked to join several ranks needs it. (MPI has no common
// binary interface across implementations; Open MPI's, stable across its
// versions 3 to 5, is the one kiln speaks: Debian's `openmpi-bin`.)
//
//   int ranks = launchedRanks();            // 0: not started by mpirun
//   auto world = joinMpi(/*timeoutSeconds=*/300);
//   backend->setCommunicator(world->get()); // the step's all-reduces
//   (*world)->sum(figures, 3);              // the trainer's sums
//
// Every collective waits at most the timeout for the other ranks; past it
// (a rank died or hangs) it fails with an error that says so, and the
// caller stops the whole run with abort() rather than wait forever.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_COMMUNICATOR_H
#define KILN_RUNTIME_COMMUNICATOR_H

#include "runtime/Program.h"
#include "runtime/Status.h"

#include <cstdint>
#include <memory>
#include <string>

namespace kiln::runtime {

class Communicator {
public:
  virtual ~Communicator() = default;

  /// This process's rank, from 0, and the number of ranks.
  virtual int rank() const = 0;
  virtual int size() const = 0;

  /// "Open MPI v4.1.4, rank 0 of 2".
  virtual std::string description() const = 0;

  /// Combines `count` tensors of `dtype` (F32 or F64) across the ranks:
  /// results[i] becomes the sum or the mean (`kind`) over the ranks of
  /// inputs[i], `elements[i]` elements; results[i] may be inputs[i] (in
  /// place). Every rank gets the same values. Fails when the other ranks
  /// do not all take part within the timeout.
  virtual Status allReduce(Collective kind, DType dtype,
                           const void *const *inputs, void *const *results,
                           const int64_t *elements, size_t count) = 0;

  /// Sums `values` over the ranks, in place.
  Status sum(double *values, size_t count) {
    void *buffer = values;
    auto n = static_cast<int64_t>(count);
    return allReduce(Collective::allReduceSum, DType::F64, &buffer, &buffer, &n,
                     1);
  }

  /// Ends every rank's process with exit status `code`: after an error on
  /// this rank, so that the others do not wait for it.
  [[noreturn]] virtual void abort(int code) = 0;
};

/// The number of ranks an MPI launcher (mpirun, srun) started, as its
/// environment says (OMPI_COMM_WORLD_SIZE, PMI_SIZE); 0 when this process
/// was not started by one.
int launchedRanks();

/// The number of ranks the launcher started on this machine
/// (OMPI_COMM_WORLD_LOCAL_SIZE, MPI_LOCALNRANKS), 1 when it does not say.
int localRanks();

/// Joins the MPI job this process was launched in: loads Open MPI
/// (libmpi.so.40) and initializes it. A collective that does not finish
/// within `timeoutSeconds` fails. An error when Open MPI cannot be loaded.
StatusOr<std::unique_ptr<Communicator>> joinMpi(double timeoutSeconds);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_COMMUNICATOR_H
