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

namespace {

std::string shapeText(const std::vector<int64_t> &shape) {
  if (shape.empty())
    return "-";
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? "," : "") + std::to_string(shape[i]);
  return text;
}

std::string bufferText(const BufferRef &ref) {
  return (ref.kind == BufferRef::Kind::argument ? "a" : "@") +
         std::to_string(ref.value);
}

std::string exact(double value) {
  char text[40];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

std::string specText(const TensorSpec &spec) {
  return spec.role + " " + spec.name + " " + dtypeName(spec.dtype) + " " +
         shapeText(spec.shape);
}

} // namespace

std::string kiln::runtime::printProgram(const Program &program) {
  std::ostringstream os;
  os << "kiln-program 1\n";
  os << "model " << program.model << "\n";
  for (const Step &step : program.steps) {
    os << "step " << step.kind << " " << step.function << " arena "
       << step.arenaBytes << "\n";
    for (const StepArgument &arg : step.arguments) {
      os << "arg " << specText(arg);
      if (!arg.init.kind.empty())
        os << " init " << arg.init.kind << " " << exact(arg.init.a) << " "
           << exact(arg.init.b);
      os << "\n";
    }
    for (const Launch &launch : step.launches) {
      os << "launch " << launch.kernel << " grid " << launch.grid[0] << ","
         << launch.grid[1] << "," << launch.grid[2] << " block "
         << launch.block[0] << "," << launch.block[1] << "," << launch.block[2]
         << " shared " << launch.sharedBytes << " seed "
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
      if (!parseInteger(w.substr(start, comma - start), value, what))
        return false;
      if (value < 0) {
        status = error(std::string("negative value in ") + what);
        return false;
      }
      out.push_back(value);
      if (comma == std::string::npos)
        return true;
      start = comma + 1;
    }
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
    if (!word(out.role, "a role") || !word(out.name, "a name") ||
        !word(dtype, "a dtype"))
      return false;
    auto parsed = parseDType(dtype);
    if (!parsed) {
      status = error("unknown dtype '" + dtype + "'");
      return false;
    }
    out.dtype = *parsed;
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
    for (int i = 0; i < 3; ++i)
      out[i] = static_cast<unsigned>(values[i]);
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
    } else if (head == "step") {
      if (step)
        return r.error("'step' inside a step (missing 'end')");
      program.steps.emplace_back();
      step = &program.steps.back();
      ok = r.word(step->kind, "a step kind") &&
           r.word(step->function, "a function name") && r.keyword("arena") &&
           r.integer(step->arenaBytes, "the arena size") && r.expectEnd();
    } else if (head == "end") {
      if (!step)
        return r.error("'end' outside a step");
      step = nullptr;
      ok = r.expectEnd();
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
           r.triple(launch.grid, "grid") && r.keyword("block") &&
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
  if (Status status = verifyProgram(program); !status.ok())
    return Status::error(source + ": " + status.message());
  return program;
}

Status kiln::runtime::verifyProgram(const Program &program) {
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
    for (const Launch &launch : step.launches) {
      if (launch.kernel.empty())
        return Status::error("step '" + step.kind + "': unnamed kernel");
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
