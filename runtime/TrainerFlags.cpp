//===- TrainerFlags.cpp - a compiled trainer's command line ---------------===//

#include "runtime/TrainerFlags.h"

#include "runtime/Dataset.h"
#include "runtime/TextData.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iterator>

using namespace kiln::runtime;

std::string &kiln::runtime::trainerName() {
  static std::string name = "trainer";
  return name;
}

int kiln::runtime::trainerError(int code, const std::string &message) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s: error: %s\n", trainerName().c_str(),
               message.c_str());
  return code;
}

namespace {
int fail(int code, const std::string &message) {
  return trainerError(code, message);
}
} // namespace

void kiln::runtime::printTrainerHelp(const EmbeddedModel &model) {
  std::printf(
      "%s: train the kiln model '%.*s' on Fashion-MNIST\n"
      "(compiled by kiln %.*s with: %.*s)\n\n"
      "usage: %s [options]\n\n"
      "  --device cuda|cpu     where to train (default: cuda when a GPU is\n"
      "                        usable, else cpu)\n"
      "  --threads N           threads of the CPU kernels (default: the\n"
      "                        CPUs available, shared among the ranks on\n"
      "                        this machine; results do not depend on it)\n"
      "  --data DATA           the training data (default: Fashion-MNIST's\n"
      "                        IDX files in %s):\n"
      "                        a directory of them, a .npz or .safetensors\n"
      "                        file of one array per input (by its name),\n"
      "                        or NAME=FILE,... (.npy or IDX files)\n"
      "  --test-data DATA      the test data, for a file (default: the\n"
      "                        last --held-out of the training data)\n"
      "  --held-out F          the fraction held out (default 0.1)\n"
      "  --epochs N            epochs to train (default 3)\n"
      "  --seed N              seed of initialization, shuffling and dropout\n"
      "                        (default 0)\n"
      "  --save FILE           checkpoint written after every epoch (default\n"
      "                        %.*s.safetensors; 'none' to skip)\n"
      "  --resume FILE         continue from a checkpoint (of this trainer or\n"
      "                        of `kiln train`)\n"
      "  --log FILE            per-epoch metrics as JSON lines (default\n"
      "                        %.*s.metrics.jsonl; 'none' to skip)\n"
      "  --eval-every N        also evaluate on the test set every N steps\n"
      "  --train-examples N    use only the first N training examples\n"
      "  --test-examples N     use only the first N test examples\n"
      "  --lr X                base learning rate, scaled by the compiled\n"
      "                        schedule (default: the model's, as compiled)\n"
      "  --tune                before training, time each kernel's other\n"
      "                        schedules on this device and use the fastest\n"
      "                        (cached: later runs load the choices)\n"
      "  --tune-budget S       seconds of timing at most (default 60)\n"
      "  --tuned-schedules FILE  write the choices for `kiln compile\n"
      "                        --schedules FILE`\n"
      "  --timeout S           under mpirun: seconds to wait for the other\n"
      "                        ranks before stopping them all (default 300)\n"
      "  --help, --version\n\n"
      "Data parallel (a trainer compiled with --data-parallel):\n"
      "`mpirun -np N %s` trains on N ranks, each on its --batch slice of\n"
      "every global batch of N x --batch examples, averaging the gradients;\n"
      "rank 0 prints, logs and saves checkpoints.\n\n"
      "Text models (inputs tokens and targets) train on a text file:\n"
      "  --data FILE           the text; its last 10%% is held out (default\n"
      "                        %.*s)\n"
      "  --steps-per-epoch N   training steps per epoch (default: training\n"
      "                        bytes / (batch * context))\n"
      "  --train-examples N    use only the first N bytes of the training "
      "part\n"
      "  --test-examples N     evaluate on at most N held-out windows\n"
      "  --generate N          after training (or --resume), sample N bytes\n"
      "                        and print them after the prompt\n"
      "  --prompt TEXT         the text to continue (default: a newline)\n"
      "  --temperature X       divides the logits (default 1; 0: greedy)\n"
      "  --top-k K             sample among the K likeliest bytes only\n\n"
      "--batch N and --eval-batch N choose the batches (default train\n"
      "%lld, eval %lld), up to the largest the steps were compiled for\n"
      "(`kiln compile MODEL.kiln --emit=trainer --max-batch N --eval-batch\n"
      "N`). The optimizer (kind, schedule, momentum, betas, weight decay)\n"
      "is fixed when the trainer is compiled.\n"
      "Exit status: 0 success, 2 bad command line, 3 a file cannot be read\n"
      "or written (data, checkpoint, log), 4 training failed at run time\n"
      "(no usable GPU for --device cuda, a kernel that does not compile, a\n"
      "non-finite loss).\n",
      trainerName().c_str(), int(model.name.size()), model.name.data(),
      int(model.kilnVersion.size()), model.kilnVersion.data(),
      int(model.compileOptions.size()), model.compileOptions.data(),
      trainerName().c_str(), kDefaultFashionMnistDir, int(model.name.size()),
      model.name.data(), int(model.name.size()), model.name.data(),
      trainerName().c_str(),
      model.defaultText.empty() ? 4 : int(model.defaultText.size()),
      model.defaultText.empty() ? "none" : model.defaultText.data(),
      (long long)model.trainBatch, (long long)model.evalBatch);
}

bool kiln::runtime::parseCount(const std::string &text, int64_t &out) {
  const char *end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && out >= 0;
}

bool kiln::runtime::parseNumber(const std::string &text, double &out) {
  char *end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size() &&
         std::isfinite(out);
}

int kiln::runtime::parseTrainerFlags(int argc, char **argv,
                                     TrainerFlags &options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-help" || arg == "-h") {
      options.help = true;
      continue;
    }
    if (arg == "--version") {
      options.version = true;
      continue;
    }
    if (arg == "--tune") {
      options.tune = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0)
      return fail(kTrainerUsageError,
                  "unexpected argument '" + arg +
                      "' (the model is compiled in; see --help)");
    std::string name = arg, value;
    bool hasValue = false;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      hasValue = true;
    }
    static const char *const known[] = {"--device",
                                        "--data",
                                        "--epochs",
                                        "--seed",
                                        "--save",
                                        "--resume",
                                        "--log",
                                        "--eval-every",
                                        "--train-examples",
                                        "--test-examples",
                                        "--steps-per-epoch",
                                        "--generate",
                                        "--prompt",
                                        "--temperature",
                                        "--top-k",
                                        "--batch",
                                        "--eval-batch",
                                        "--lr",
                                        "--tune-budget",
                                        "--tuned-schedules",
                                        "--threads",
                                        "--timeout",
                                        "--test-data",
                                        "--held-out"};
    if (std::find_if(std::begin(known), std::end(known), [&](const char *k) {
          return name == k;
        }) == std::end(known))
      return fail(kTrainerUsageError,
                  "unknown option '" + name + "' (see --help)");
    if (!hasValue) {
      if (i + 1 >= argc)
        return fail(kTrainerUsageError, name + " needs a value");
      value = argv[++i];
    }
    auto count = [&](int64_t &out) -> int {
      if (parseCount(value, out))
        return kTrainerSuccess;
      return fail(kTrainerUsageError, name +
                                          ": expected a non-negative integer, "
                                          "got '" +
                                          value + "'");
    };
    int code = kTrainerSuccess;
    if (name == "--device") {
      if (value != "cuda" && value != "cpu")
        return fail(kTrainerUsageError,
                    "--device must be cuda or cpu, got '" + value + "'");
      options.device = value;
    } else if (name == "--data") {
      options.dataDir = value;
    } else if (name == "--test-data") {
      options.testData = value;
    } else if (name == "--held-out") {
      if (!parseNumber(value, options.heldOut) || options.heldOut <= 0 ||
          options.heldOut >= 1)
        return fail(kTrainerUsageError,
                    "--held-out: expected a fraction between 0 and 1, got '" +
                        value + "'");
    } else if (name == "--epochs") {
      code = count(options.epochs);
      options.epochsGiven = true;
    } else if (name == "--steps-per-epoch") {
      code = count(options.stepsPerEpoch);
    } else if (name == "--generate") {
      code = count(options.generate);
    } else if (name == "--prompt") {
      if (value.empty())
        return fail(kTrainerUsageError, "--prompt: the prompt is empty");
      options.prompt = value;
    } else if (name == "--temperature") {
      if (!parseNumber(value, options.temperature) || options.temperature < 0)
        return fail(kTrainerUsageError,
                    "--temperature: expected a number >= 0, got '" + value +
                        "'");
    } else if (name == "--top-k") {
      code = count(options.topK);
      if (!code && (options.topK < 1 || options.topK > kByteVocabulary))
        return fail(kTrainerUsageError,
                    "--top-k: expected 1 to 256, got '" + value + "'");
    } else if (name == "--seed") {
      int64_t seed = 0;
      code = count(seed);
      options.seed = static_cast<uint64_t>(seed);
    } else if (name == "--save") {
      options.savePath = value;
    } else if (name == "--resume") {
      options.resumeFrom = value;
    } else if (name == "--log") {
      options.logPath = value;
    } else if (name == "--eval-every") {
      code = count(options.evalEvery);
    } else if (name == "--train-examples") {
      code = count(options.trainLimit);
    } else if (name == "--test-examples") {
      code = count(options.testLimit);
    } else if (name == "--batch" || name == "--eval-batch") {
      // Checked against the steps' largest batches with the program.
      int64_t &batch =
          name == "--batch" ? options.trainBatch : options.evalBatch;
      if ((code = count(batch)))
        return code;
      if (batch < 1)
        return fail(kTrainerUsageError, name + ": expected a batch >= 1");
    } else if (name == "--lr") {
      if (!parseNumber(value, options.lr) || options.lr <= 0)
        return fail(kTrainerUsageError,
                    "--lr: expected a positive number, got '" + value + "'");
    } else if (name == "--tune-budget") {
      if (!parseNumber(value, options.tuneBudget) || options.tuneBudget < 0)
        return fail(kTrainerUsageError,
                    "--tune-budget: expected seconds >= 0, got '" + value +
                        "'");
    } else if (name == "--tuned-schedules") {
      options.tunedSchedules = value;
    } else if (name == "--threads") {
      if ((code = count(options.threads)))
        return code;
      if (options.threads < 1 || options.threads > 1024)
        return fail(kTrainerUsageError,
                    "--threads: expected 1 to 1024, got '" + value + "'");
    } else if (name == "--timeout") {
      if (!parseNumber(value, options.timeout) || options.timeout <= 0)
        return fail(kTrainerUsageError,
                    "--timeout: expected seconds > 0, got '" + value + "'");
    }
    if (code)
      return code;
  }
  if (!options.tune)
    for (const char *flag : {"--tune-budget", "--tuned-schedules"})
      for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]).rfind(flag, 0) == 0)
          return fail(kTrainerUsageError, std::string(flag) + " needs --tune");
  if (options.generate < 0)
    for (const char *flag : {"--prompt", "--temperature", "--top-k"})
      for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]).rfind(flag, 0) == 0)
          return fail(kTrainerUsageError,
                      std::string(flag) + " needs --generate N");
  return kTrainerSuccess;
}
