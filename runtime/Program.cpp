//===- Program.cpp - a compiled model's steps, as text --------------------===//

#include "runtime/Program.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <sstream>

using namespace kiln::runtime;

int64_t TensorSpec::elements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::vector<std::string>
kiln::runtime::splitKernelSource(const std::string &source, unsigned parts) {
  std::string marker = kKernelMarker;
  std::vector<size_t> starts;
  for (size_t at = source.find(marker); at != std::string::npos;
       at = source.find(marker, at + marker.size()))
    starts.push_back(at);
  if (starts.empty() || parts <= 1)
    return {source};
  std::string preamble = source.substr(0, starts.front());
  starts.push_back(source.size());
  size_t kernels = starts.size() - 1;
  parts = static_cast<unsigned>(std::min<size_t>(parts, kernels));
  std::vector<std::string> result;
  size_t first = 0;
  for (unsigned p = 0; p < parts; ++p) {
    // Take kernels until this part has its share of the remaining text.
    size_t remaining = source.size() - starts[first];
    size_t target = remaining / (parts - p);
    size_t last = first + 1;
    while (last < kernels && kernels - last > parts - p - 1 &&
           starts[last] - starts[first] < target)
      ++last;
    if (p + 1 == parts)
      last = kernels;
    result.push_back(
        preamble + source.substr(starts[first], starts[last] - starts[first]));
    first = last;
  }
  return result;
}

const Step *Program::step(const std::string &kind) const {
  for (const Step &s : steps)
    if (s.kind == kind)
      return &s;
  return nullptr;
}

const KernelInfo *Program::kernel(const std::string &symbol) const {
  for (const KernelInfo &k : kernels)
    if (k.symbol == symbol)
      return &k;
  return nullptr;
}

namespace {

/// A size: a number, `b` (the batch) or `k*b`.
std::string sizeText(int64_t size) {
  if (!isPerBatch(size))
    return std::to_string(size);
  return size == -1 ? "b" : std::to_string(-size) + "*b";
}

std::string shapeText(const std::vector<int64_t> &shape) {
  if (shape.empty())
    return "-";
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? "," : "") + sizeText(shape[i]);
  return text;
}

} // namespace

std::string kiln::runtime::gridExtentText(const GridExtent &extent) {
  if (extent.isFixed())
    return std::to_string(extent.constant);
  std::string text;
  if (extent.constant != 1 || extent.dynamicFactors.empty())
    text = std::to_string(extent.constant);
  for (unsigned f : extent.dynamicFactors)
    text += (text.empty() ? "d" : "*d") + std::to_string(f);
  if (extent.perBlock != 1)
    text += "/" + std::to_string(extent.perBlock);
  return text;
}

namespace {

std::string bufferText(const BufferRef &ref) {
  return (ref.kind == BufferRef::Kind::argument ? "a" : "@") +
         std::to_string(ref.value);
}

std::string exact(double value) {
  char text[40];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

std::string gridText(const GridExtent grid[3]) {
  return gridExtentText(grid[0]) + "," + gridExtentText(grid[1]) + "," +
         gridExtentText(grid[2]);
}

std::string specText(const TensorSpec &spec) {
  return std::string(roleName(spec.role)) + " " + spec.name + " " +
         dtypeName(spec.dtype) + " " + shapeText(spec.shape);
}

} // namespace

const char *kiln::runtime::roleName(Role role) {
  switch (role) {
  case Role::param:
    return "param";
  case Role::state:
    return "state";
  case Role::hyper:
    return "hyper";
  case Role::input:
    return "input";
  case Role::loss:
    return "loss";
  case Role::metric:
    return "metric";
  case Role::output:
    return "output";
  }
  return "?";
}

std::optional<Role> kiln::runtime::parseRole(std::string_view name) {
  for (Role role : {Role::param, Role::state, Role::hyper, Role::input,
                    Role::loss, Role::metric, Role::output})
    if (name == roleName(role))
      return role;
  return std::nullopt;
}

const char *kiln::runtime::collectiveName(Collective collective) {
  switch (collective) {
  case Collective::none:
    return "none";
  case Collective::allReduceSum:
    return "all_reduce_sum";
  case Collective::allReduceMean:
    return "all_reduce_mean";
  }
  return "none";
}

std::string kiln::runtime::printProgram(const Program &program) {
  std::ostringstream os;
  os << "kiln-program 1\n";
  os << "model " << program.model << "\n";
  for (const Step &step : program.steps) {
    os << "step " << step.kind << " " << step.function << " arena "
       << step.arenaBytes;
    if (step.maxBatch)
      os << " max-batch " << step.maxBatch;
    os << "\n";
    for (const StepArgument &arg : step.arguments) {
      os << "arg " << specText(arg);
      if (!arg.init.kind.empty())
        os << " init " << arg.init.kind << " " << exact(arg.init.a) << " "
           << exact(arg.init.b);
      os << "\n";
    }
    for (const Launch &launch : step.launches) {
      if (launch.collective != Collective::none) {
        os << "collective " << collectiveName(launch.collective) << " "
           << dtypeName(launch.dtype) << " dims " << shapeText(launch.dims)
           << " buffers";
        for (const BufferRef &ref : launch.buffers)
          os << " " << bufferText(ref);
        os << "\n";
        continue;
      }
      os << "launch " << launch.kernel << " grid " << gridText(launch.grid)
         << " block " << launch.block[0] << "," << launch.block[1] << ","
         << launch.block[2] << " shared " << launch.sharedBytes << " seed "
         << (launch.takesSeed ? 1 : 0) << " dims " << shapeText(launch.dims)
         << " buffers";
      for (const BufferRef &ref : launch.buffers)
        os << " " << bufferText(ref);
      os << "\n";
    }
    for (const StepResult &result : step.results)
      os << "result " << specText(result) << " " << bufferText(result.buffer)
         << "\n";
    os << "end\n";
  }
  for (const KernelInfo &kernel : program.kernels) {
    os << "kernel " << kernel.symbol << " keys ";
    for (size_t i = 0; i < kernel.keys.size(); ++i)
      os << (i ? "," : "") << kernel.keys[i];
    if (kernel.keys.empty())
      os << "-";
    os << " source " << (kernel.source.empty() ? "-" : kernel.source) << "\n";
    for (const char *target : {"cuda", "cpu"})
      if (!kernel.schedule(target).empty())
        os << "schedule " << target << " " << kernel.schedule(target) << "\n";
    for (const KernelCandidate &c : kernel.candidates)
      os << "candidate " << c.target << " " << c.symbol << " grid "
         << gridText(c.grid) << " block " << c.block[0] << "," << c.block[1]
         << "," << c.block[2] << " shared " << c.sharedBytes << " schedule "
         << c.schedule << "\n";
    os << "end\n";
  }
  return os.str();
}

namespace {

/// Reads one line's whitespace-separated words, reporting errors at it.
class LineReader {
public:
  LineReader(const std::string &source, int line, std::vector<std::string> w)
      : source(source), line(line), words(std::move(w)) {}

  Status error(const std::string &message) const {
    return Status::error(source + ":" + std::to_string(line) + ": " + message);
  }
  bool done() const { return next == words.size(); }
  bool word(std::string &out, const char *what) {
    if (done()) {
      status = error(std::string("expected ") + what);
      return false;
    }
    out = words[next++];
    return true;
  }
  bool keyword(const char *expected) {
    std::string w;
    if (!word(w, expected))
      return false;
    if (w != expected) {
      status =
          error(std::string("expected '") + expected + "', got '" + w + "'");
      return false;
    }
    return true;
  }
  bool integer(int64_t &out, const char *what) {
    std::string w;
    if (!word(w, what))
      return false;
    return parseInteger(w, out, what);
  }
  bool parseInteger(const std::string &w, int64_t &out, const char *what) {
    auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), out);
    if (ec != std::errc() || end != w.data() + w.size()) {
      status = error(std::string("expected ") + what + ", got '" + w + "'");
      return false;
    }
    return true;
  }
  bool number(double &out, const char *what) {
    std::string w;
    if (!word(w, what))
      return false;
    char *end = nullptr;
    out = std::strtod(w.c_str(), &end);
    if (w.empty() || *end != 0) {
      status = error(std::string("expected ") + what + ", got '" + w + "'");
      return false;
    }
    return true;
  }
  /// A comma-separated list of integers, or "-" for none.
  bool list(std::vector<int64_t> &out, const char *what) {
    std::string w;
    if (!word(w, what))
      return false;
    out.clear();
    if (w == "-")
      return true;
    size_t start = 0;
    while (true) {
      size_t comma = w.find(',', start);
      int64_t value = 0;
      if (!size(w.substr(start, comma - start), value, what))
        return false;
      out.push_back(value);
      if (comma == std::string::npos)
        return true;
      start = comma + 1;
    }
  }
  /// A size: a number, `b` or `k*b` (stored as -k).
  bool size(const std::string &w, int64_t &out, const char *what) {
    bool perBatch = w == "b" || (w.size() > 2 && w.ends_with("*b"));
    if (w == "b") {
      out = -1;
      return true;
    }
    if (!parseInteger(perBatch ? w.substr(0, w.size() - 2) : w, out, what))
      return false;
    if (out < 0 || (perBatch && out == 0)) {
      status = error(std::string("bad size '") + w + "' in " + what);
      return false;
    }
    if (perBatch)
      out = -out;
    return true;
  }
  /// Three grid extents, each `N` or `[C*]dI[*dJ...][/P]`.
  bool grid(GridExtent out[3]) {
    std::string w;
    if (!word(w, "grid"))
      return false;
    size_t start = 0;
    for (int i = 0; i < 3; ++i) {
      size_t comma = w.find(',', start);
      if ((i < 2) != (comma != std::string::npos)) {
        status = error("expected three values for grid, got '" + w + "'");
        return false;
      }
      if (!extent(w.substr(start, comma - start), out[i]))
        return false;
      start = comma + 1;
    }
    return true;
  }
  bool extent(const std::string &w, GridExtent &out) {
    out = GridExtent();
    std::string factors = w;
    if (size_t slash = w.find('/'); slash != std::string::npos) {
      if (!parseInteger(w.substr(slash + 1), out.perBlock, "a grid divisor"))
        return false;
      factors = w.substr(0, slash);
    }
    bool sawConstant = false;
    size_t start = 0;
    while (true) {
      size_t star = factors.find('*', start);
      std::string factor = factors.substr(start, star - start);
      if (!factor.empty() && factor[0] == 'd') {
        int64_t index = 0;
        if (!parseInteger(factor.substr(1), index, "a dims index"))
          return false;
        out.dynamicFactors.push_back(static_cast<unsigned>(index));
      } else if (sawConstant || !out.dynamicFactors.empty() ||
                 !parseInteger(factor, out.constant, "a grid extent")) {
        if (status.ok())
          status = error("bad grid extent '" + w + "'");
        return false;
      } else {
        sawConstant = true;
      }
      if (star == std::string::npos)
        break;
      start = star + 1;
    }
    if (out.constant < 1 || out.perBlock < 1 ||
        (out.perBlock != 1 && out.dynamicFactors.empty())) {
      status = error("bad grid extent '" + w + "'");
      return false;
    }
    return true;
  }
  bool buffer(BufferRef &out) {
    std::string w;
    if (!word(w, "a buffer (aN or @OFFSET)"))
      return false;
    if (w.size() < 2 || (w[0] != 'a' && w[0] != '@')) {
      status = error("expected a buffer (aN or @OFFSET), got '" + w + "'");
      return false;
    }
    out.kind = w[0] == 'a' ? BufferRef::Kind::argument : BufferRef::Kind::arena;
    return parseInteger(w.substr(1), out.value, "a buffer index or offset");
  }
  bool spec(TensorSpec &out) {
    std::string dtype;
    std::string role;
    if (!word(role, "a role") || !word(out.name, "a name") ||
        !word(dtype, "a dtype"))
      return false;
    auto parsed = parseDType(dtype);
    if (!parsed) {
      status = error("unknown dtype '" + dtype + "'");
      return false;
    }
    out.dtype = *parsed;
    std::optional<Role> known = parseRole(role);
    if (!known) {
      status = error("unknown role '" + role + "'");
      return false;
    }
    out.role = *known;
    return list(out.shape, "a shape");
  }
  bool triple(unsigned out[3], const char *what) {
    std::vector<int64_t> values;
    if (!list(values, what))
      return false;
    if (values.size() != 3) {
      status = error(std::string("expected three values for ") + what);
      return false;
    }
    for (int i = 0; i < 3; ++i) {
      if (isPerBatch(values[i])) {
        status = error(std::string("a size per batch in ") + what);
        return false;
      }
      out[i] = static_cast<unsigned>(values[i]);
    }
    return true;
  }
  /// The rest of the line, its words joined by single spaces.
  bool rest(std::string &out, const char *what) {
    if (done()) {
      status = error(std::string("expected ") + what);
      return false;
    }
    out.clear();
    while (!done())
      out += (out.empty() ? "" : " ") + words[next++];
    return true;
  }
  /// "cuda" or "cpu".
  bool target(std::string &out) {
    if (!word(out, "a target"))
      return false;
    if (out != "cuda" && out != "cpu") {
      status = error("unknown target '" + out + "' (cuda or cpu)");
      return false;
    }
    return true;
  }
  bool expectEnd() {
    if (!done()) {
      status = error("unexpected '" + words[next] + "'");
      return false;
    }
    return true;
  }

  Status status;

private:
  const std::string &source;
  int line;
  std::vector<std::string> words;
  size_t next = 0;
};

} // namespace

StatusOr<Program> kiln::runtime::parseProgram(const std::string &text,
                                              const std::string &source) {
  Program program;
  std::istringstream in(text);
  std::string lineText;
  int line = 0;
  Step *step = nullptr;
  KernelInfo *kernel = nullptr;
  bool sawHeader = false;
  while (std::getline(in, lineText)) {
    ++line;
    std::istringstream words(lineText);
    std::vector<std::string> w;
    for (std::string word; words >> word;)
      w.push_back(word);
    if (w.empty() || w[0][0] == '#')
      continue;
    LineReader r(source, line, w);
    std::string head;
    (void)r.word(head, "a record");
    bool ok = true;
    if (!sawHeader) {
      if (head != "kiln-program" || w.size() != 2 || w[1] != "1")
        return r.error("not a kiln program (expected 'kiln-program 1')");
      sawHeader = true;
      continue;
    }
    if (head == "model") {
      ok = r.word(program.model, "a model name") && r.expectEnd();
    } else if (head == "step" || head == "kernel") {
      if (step || kernel)
        return r.error("'" + head + "' inside a " + (step ? "step" : "kernel") +
                       " (missing 'end')");
      if (head == "kernel") {
        program.kernels.emplace_back();
        kernel = &program.kernels.back();
        std::string keys;
        ok = r.word(kernel->symbol, "a kernel") && r.keyword("keys") &&
             r.word(keys, "keys") && r.keyword("source") &&
             r.rest(kernel->source, "a source");
        if (kernel->source == "-")
          kernel->source.clear();
        for (size_t start = 0; ok && keys != "-";) {
          size_t comma = keys.find(',', start);
          kernel->keys.push_back(keys.substr(start, comma - start));
          if (comma == std::string::npos)
            break;
          start = comma + 1;
        }
        if (!ok)
          return r.status;
        continue;
      }
      program.steps.emplace_back();
      step = &program.steps.back();
      ok = r.word(step->kind, "a step kind") &&
           r.word(step->function, "a function name") && r.keyword("arena") &&
           r.integer(step->arenaBytes, "the arena size");
      if (ok && !r.done())
        ok = r.keyword("max-batch") &&
             r.integer(step->maxBatch, "the largest batch");
      ok = ok && r.expectEnd();
    } else if (head == "end") {
      if (!step && !kernel)
        return r.error("'end' outside a step or kernel");
      step = nullptr;
      kernel = nullptr;
      ok = r.expectEnd();
    } else if (kernel && head == "schedule") {
      std::string target, text;
      ok = r.target(target) && r.rest(text, "a schedule");
      (target == "cuda" ? kernel->cudaSchedule : kernel->cpuSchedule) = text;
    } else if (kernel && head == "candidate") {
      KernelCandidate c;
      int64_t shared = 0;
      ok = r.target(c.target) && r.word(c.symbol, "a kernel") &&
           r.keyword("grid") && r.grid(c.grid) && r.keyword("block") &&
           r.triple(c.block, "block") && r.keyword("shared") &&
           r.integer(shared, "shared bytes") && r.keyword("schedule") &&
           r.rest(c.schedule, "a schedule");
      c.sharedBytes = static_cast<unsigned>(shared);
      kernel->candidates.push_back(std::move(c));
    } else if (kernel) {
      return r.error("unknown record '" + head + "' in a kernel");
    } else if (!step) {
      return r.error("'" + head + "' outside a step");
    } else if (head == "arg") {
      StepArgument arg;
      ok = r.spec(arg);
      if (ok && !r.done()) {
        ok = r.keyword("init") && r.word(arg.init.kind, "an initializer") &&
             r.number(arg.init.a, "a number") &&
             r.number(arg.init.b, "a number");
      }
      ok = ok && r.expectEnd();
      step->arguments.push_back(std::move(arg));
    } else if (head == "launch") {
      Launch launch;
      int64_t shared = 0, seed = 0;
      ok = r.word(launch.kernel, "a kernel") && r.keyword("grid") &&
           r.grid(launch.grid) && r.keyword("block") &&
           r.triple(launch.block, "block") && r.keyword("shared") &&
           r.integer(shared, "shared bytes") && r.keyword("seed") &&
           r.integer(seed, "0 or 1") && r.keyword("dims") &&
           r.list(launch.dims, "dynamic sizes") && r.keyword("buffers");
      launch.sharedBytes = static_cast<unsigned>(shared);
      launch.takesSeed = seed != 0;
      while (ok && !r.done()) {
        BufferRef ref;
        ok = r.buffer(ref);
        launch.buffers.push_back(ref);
      }
      step->launches.push_back(std::move(launch));
    } else if (head == "collective") {
      Launch launch;
      std::string kind, dtype;
      ok = r.word(kind, "a collective") && r.word(dtype, "a dtype");
      if (ok) {
        for (Collective c :
             {Collective::allReduceSum, Collective::allReduceMean})
          if (kind == collectiveName(c))
            launch.collective = c;
        std::optional<DType> parsed = parseDType(dtype);
        if (launch.collective == Collective::none)
          return r.error("unknown collective '" + kind +
                         "' (all_reduce_sum or all_reduce_mean)");
        if (!parsed)
          return r.error("unknown dtype '" + dtype + "'");
        launch.dtype = *parsed;
      }
      ok = ok && r.keyword("dims") && r.list(launch.dims, "element counts") &&
           r.keyword("buffers");
      while (ok && !r.done()) {
        BufferRef ref;
        ok = r.buffer(ref);
        launch.buffers.push_back(ref);
      }
      step->launches.push_back(std::move(launch));
    } else if (head == "result") {
      StepResult result;
      ok = r.spec(result) && r.buffer(result.buffer) && r.expectEnd();
      step->results.push_back(std::move(result));
    } else {
      return r.error("unknown record '" + head + "'");
    }
    if (!ok)
      return r.status;
  }
  if (!sawHeader)
    return Status::error(source + ": empty program");
  if (step)
    return Status::error(source + ": step '" + step->kind + "' has no 'end'");
  if (kernel)
    return Status::error(source + ": kernel '" + kernel->symbol +
                         "' has no 'end'");
  if (Status status = verifyProgram(program); !status.ok())
    return Status::error(source + ": " + status.message());
  return program;
}

Status kiln::runtime::verifyProgram(const Program &program) {
  for (size_t i = 0; i < program.kernels.size(); ++i) {
    const KernelInfo &kernel = program.kernels[i];
    if (kernel.symbol.empty())
      return Status::error("an unnamed kernel record");
    for (size_t j = 0; j < i; ++j)
      if (program.kernels[j].symbol == kernel.symbol)
        return Status::error("kernel '" + kernel.symbol + "' has two records");
    for (const KernelCandidate &c : kernel.candidates)
      if (c.symbol.empty() || (c.target != "cuda" && c.target != "cpu") ||
          c.schedule.empty())
        return Status::error("kernel '" + kernel.symbol +
                             "': a candidate without a target, symbol or "
                             "schedule");
  }
  for (const Step &step : program.steps) {
    auto check = [&](const BufferRef &ref, const std::string &where) -> Status {
      if (ref.kind == BufferRef::Kind::argument
              ? ref.value < 0 ||
                    ref.value >= static_cast<int64_t>(step.arguments.size())
              : ref.value < 0 ||
                    ref.value >= std::max<int64_t>(step.arenaBytes, 1))
        return Status::error("step '" + step.kind + "': " + where +
                             " refers to " + bufferText(ref) +
                             ", which does not exist");
      return Status::success();
    };
    if (step.arenaBytes < 0)
      return Status::error("step '" + step.kind + "': negative arena size");
    if (step.maxBatch < 0)
      return Status::error("step '" + step.kind + "': negative max-batch");
    auto sizes = [&](const std::vector<int64_t> &values,
                     const std::string &where) -> Status {
      if (!step.maxBatch &&
          std::any_of(values.begin(), values.end(), isPerBatch))
        return Status::error("step '" + step.kind + "': " + where +
                             " has a size per batch, but the step has no "
                             "max-batch");
      return Status::success();
    };
    // U8 is a data set's type; no step tensor has it.
    auto dtype = [&](const TensorSpec &spec, const char *what) {
      return spec.dtype == DType::U8
                 ? Status::error("step '" + step.kind + "': " + what + " '" +
                                 spec.name + "' of dtype U8")
                 : Status::success();
    };
    for (const StepArgument &arg : step.arguments) {
      if (Status s = sizes(arg.shape, "argument '" + arg.name + "'"); !s.ok())
        return s;
      if (Status s = dtype(arg, "argument"); !s.ok())
        return s;
    }
    for (const StepResult &result : step.results) {
      if (Status s = sizes(result.shape, "result '" + result.name + "'");
          !s.ok())
        return s;
      if (Status s = dtype(result, "result"); !s.ok())
        return s;
    }
    for (const Launch &launch : step.launches) {
      if (launch.collective != Collective::none) {
        std::string what =
            std::string("a collective ") + collectiveName(launch.collective);
        if (launch.dims.empty() ||
            launch.buffers.size() != 2 * launch.dims.size())
          return Status::error("step '" + step.kind + "': " + what +
                               " needs an element count per tensor and an "
                               "input and a result buffer for each");
        if (!isFloat(launch.dtype))
          return Status::error("step '" + step.kind + "': " + what + " of " +
                               dtypeName(launch.dtype) +
                               " (it reduces floats)");
        if (Status s = sizes(launch.dims, what); !s.ok())
          return s;
        for (const BufferRef &ref : launch.buffers)
          if (Status s = check(ref, what); !s.ok())
            return s;
        continue;
      }
      if (launch.kernel.empty())
        return Status::error("step '" + step.kind + "': unnamed kernel");
      if (Status s = sizes(launch.dims, "kernel '" + launch.kernel + "'");
          !s.ok())
        return s;
      auto factors = [&](const GridExtent grid[3]) -> Status {
        for (int i = 0; i < 3; ++i)
          for (unsigned f : grid[i].dynamicFactors)
            if (f >= launch.dims.size())
              return Status::error("step '" + step.kind + "': kernel '" +
                                   launch.kernel + "' has a grid factor d" +
                                   std::to_string(f) + " beyond its dims");
        return Status::success();
      };
      if (Status s = factors(launch.grid); !s.ok())
        return s;
      if (const KernelInfo *kernel = program.kernel(launch.kernel))
        for (const KernelCandidate &c : kernel->candidates)
          if (Status s = factors(c.grid); !s.ok())
            return s;
      for (const BufferRef &ref : launch.buffers)
        if (Status s = check(ref, "kernel '" + launch.kernel + "'"); !s.ok())
          return s;
    }
    for (const StepResult &result : step.results)
      if (Status s = check(result.buffer, "result '" + result.name + "'");
          !s.ok())
        return s;
  }
  return Status::success();
}

Status kiln::runtime::bindBatch(Program &program, const std::string &kind,
                                int64_t batch) {
  Step *step = nullptr;
  for (Step &s : program.steps)
    if (s.kind == kind)
      step = &s;
  if (!step)
    return Status::error("no '" + kind + "' step");
  if (!step->maxBatch)
    return Status::error("step '" + kind + "' was compiled for a fixed batch");
  if (batch < 1 || batch > step->maxBatch)
    return Status::error("step '" + kind + "' takes a batch from 1 to " +
                         std::to_string(step->maxBatch) + ", not " +
                         std::to_string(batch));
  auto bind = [&](std::vector<int64_t> &sizes) {
    for (int64_t &size : sizes)
      size = sizeAtBatch(size, batch);
  };
  for (StepArgument &arg : step->arguments)
    bind(arg.shape);
  for (StepResult &result : step->results)
    bind(result.shape);
  for (Launch &launch : step->launches) {
    bind(launch.dims);
    for (GridExtent &extent : launch.grid)
      extent = GridExtent{extent.evaluate(launch.dims), {}, 1};
  }
  step->maxBatch = 0;
  return Status::success();
}

Status kiln::runtime::bindLargestBatches(Program &program) {
  for (Step &step : program.steps)
    if (step.maxBatch)
      if (Status s = bindBatch(program, step.kind, step.maxBatch); !s.ok())
        return s;
  return Status::success();
}

Status kiln::runtime::dropCollectives(Program &program) {
  for (Step &step : program.steps) {
    std::vector<Launch> kept;
    for (Launch &launch : step.launches) {
      if (launch.collective == Collective::none) {
        kept.push_back(std::move(launch));
        continue;
      }
      size_t count = launch.dims.size();
      for (size_t i = 0; i < count; ++i)
        if (!(launch.buffers[i] == launch.buffers[count + i]))
          return Status::error("step '" + step.kind + "': a collective " +
                               collectiveName(launch.collective) +
                               " not in place");
    }
    step.launches = std::move(kept);
  }
  return Status::success();
}

Status kiln::runtime::requireFixedSizes(const Program &program) {
  for (const Step &step : program.steps)
    if (step.maxBatch)
      return Status::error("step '" + step.kind +
                           "' has a run-time batch: fix it first "
                           "(bindBatch)");
  return Status::success();
}
