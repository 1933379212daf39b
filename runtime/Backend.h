//===- Backend.h - a compiled model running on a device ---------*- C++ -*-===//
//
// What a trainer drives: a Program (Program.h) whose kernels are compiled
// for one device, with the model's parameters and optimizer state resident
// there between steps. The CPU backend (CpuBackend.h) runs the C++ kernels;
// the CUDA backend (CudaBackend.h) runs the CUDA kernels, each step replayed
// as one CUDA graph.
//
// Tensors are named as the program's step arguments name them: parameters
// and state are shared by every step (the evaluation step reads the
// parameters the training step writes); inputs belong to a step.
//
//   auto backend = createCpuBackend(program, cppSource, {});
//   backend->write("l1.weight", data, bytes);   // every param and state
//   backend->setInput("train", "x", images, bytes);
//   backend->setInput("train", "label", labels, bytes);
//   // or, from a dataset kept on the device (ByteTable.h):
//   int pixels = *backend->addByteTable(data, count, decode, 256 * 4);
//   backend->gatherInput("train", "x", pixels, offsets, rows, 784);
//   backend->run("train", seed);
//   backend->scalars("train", values);          // loss, then metrics
//   backend->output("predict", "logits", data, bytes);
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_BACKEND_H
#define KILN_RUNTIME_BACKEND_H

#include "runtime/Communicator.h"
#include "runtime/Program.h"
#include "runtime/Status.h"
#include "runtime/Tuner.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::runtime {

/// The device time of one kernel, summed over the launches profiled.
struct KernelTime {
  std::string kernel;
  uint64_t launches = 0;
  double milliseconds = 0;
};

class Backend {
public:
  virtual ~Backend() = default;

  /// "cpu (x86-64-v4, 2 threads)": the instruction set the kernels were
  /// compiled for and the threads they run on; or "cuda:0 NVIDIA H100 80GB
  /// HBM3 (sm_90)".
  virtual std::string description() const = 0;

  /// The program it runs.
  virtual const Program &program() const = 0;

  /// Seconds spent compiling the kernels when the backend was created, and
  /// whether the result came from the on-disk cache.
  virtual double compileSeconds() const = 0;
  virtual bool compiledFromCache() const = 0;

  /// Copies `bytes` into the parameter or state tensor `name`, or out of it;
  /// `bytes` must be the tensor's size.
  virtual Status write(const std::string &name, const void *data,
                       size_t bytes) = 0;
  virtual Status read(const std::string &name, void *data, size_t bytes) = 0;

  /// Sets input `name` of step `step` ("train", "eval") for its next run.
  virtual Status setInput(const std::string &step, const std::string &name,
                          const void *data, size_t bytes) = 0;

  /// Keeps `count` bytes (copied) where the backend computes, on the GPU
  /// uploaded once, each byte to be decoded through `decode`: 256 elements
  /// of a dtype (`decodeBytes` / 256 bytes each), byte b becoming element
  /// b (ByteTable.h). Returns the table's handle for gatherInput.
  virtual StatusOr<int> addByteTable(const uint8_t *bytes, size_t count,
                                     const void *decode,
                                     size_t decodeBytes) = 0;

  /// Sets input `name` of step `step` for its next run, as setInput does,
  /// to rows of byte table `table`, decoded: row r is the `width` bytes
  /// from offsets[r]. The input must hold rows x width elements of the
  /// table's element size. The CUDA backend gathers on the GPU before the
  /// step, so feeding a batch costs the host a copy of its offsets.
  virtual Status gatherInput(const std::string &step, const std::string &name,
                             int table, const int64_t *offsets, size_t rows,
                             size_t width) = 0;

  /// Runs step `step` on the inputs last set; `seed` draws its random
  /// numbers (dropout). May return before the step has finished.
  virtual Status run(const std::string &step, uint64_t seed) = 0;

  /// The scalar results (the loss, then the metrics, as the step's results
  /// list them) of the last run of `step` (`runsAgo` 0) or of the run
  /// before it (1), waiting for that run to finish. Asking for the run
  /// before the last lets a caller submit step n + 1 before it reads step
  /// n's loss, so the device never idles between steps.
  virtual Status scalars(const std::string &step, std::vector<double> &values,
                         unsigned runsAgo = 0) = 0;

  /// Copies result `name` of the last run of `step` (an output of the
  /// "predict" step, a tensor of any shape) into `data`, waiting for the
  /// run to finish; `bytes` must be the result's size.
  virtual Status output(const std::string &step, const std::string &name,
                        void *data, size_t bytes) = 0;
  /// Waits for every step submitted.
  virtual Status synchronize() = 0;

  /// Bytes of device memory the backend holds (parameters, state, inputs,
  /// arena, byte tables).
  virtual size_t memoryBytes() const = 0;

  /// Tunes the kernels step `step` launches (Tuner.h): times their
  /// candidate schedules for this backend's target, whose kernels
  /// `candidates` holds (the program's `--emit=cpp-candidates` or
  /// `cuda-candidates` source), on buffers of its own, and from then on
  /// launches the fastest in every step. Call it before the first run. The
  /// parameters and state are untouched.
  virtual StatusOr<TuneReport> tune(const std::string &step,
                                    const std::string &candidates,
                                    const TuneOptions &options) {
    (void)step, (void)candidates, (void)options;
    return Status::error(description() + " does not tune");
  }

  /// Runs the collectives of its steps (the training step's all-reduce of
  /// its gradients, Communicator.h) through `communicator`, which must
  /// outlive the backend; without one (or with one rank) they are the
  /// identity. Call it before the first run.
  virtual Status setCommunicator(Communicator *communicator) {
    (void)communicator;
    return Status::error(description() +
                         " does not run collectives across ranks");
  }

  /// When the backend profiles (CudaBackendOptions::profile): each kernel's
  /// device time over the steps run so far, in the order of first launch.
  /// Empty otherwise.
  virtual std::vector<KernelTime> kernelTimes() { return {}; }
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_BACKEND_H
