// capnpc-troupe: the Cap'n Proto compiler plugin that turns message schemas
// into plain C++ structs and their wire codecs (see docs/messages.md).
//
//   capnp compile -I. --src-prefix=. --output=path/to/capnpc-troupe:<outdir> net/x/chat.capnp
//
// writes <outdir>/net/x/chat.troupe.h and .troupe.cc. Like every capnp
// plugin it reads a CodeGeneratorRequest on stdin and runs in the output
// directory. Output paths are the schema's path minus the src-prefix, so
// bazel/capnp.bzl passes the repository root as the prefix and the headers
// are included by their path from the root.
//
// A schema using a feature troupe does not support fails: every problem is
// printed (file, struct, field, what to do instead) and nothing is written.

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "capnp/schema-loader.h"
#include "capnp/schema.capnp.h"
#include "capnp/serialize.h"
#include "kj/exception.h"
#include "net/codegen/emit.h"
#include "net/codegen/model.h"

namespace {

bool WriteFile(const std::string& path, const std::string& content) {
  const std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  std::ofstream file(p, std::ios::binary | std::ios::trunc);
  file << content;
  file.close();
  if (!file) {
    std::fprintf(stderr, "capnpc-troupe: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

int Run() {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 1ull << 40;  // a trusted request from capnp itself
  options.nestingLimit = 1 << 10;
  capnp::StreamFdMessageReader message(STDIN_FILENO, options);
  capnp::schema::CodeGeneratorRequest::Reader request = message.getRoot<capnp::schema::CodeGeneratorRequest>();

  capnp::SchemaLoader loader;
  for (capnp::schema::Node::Reader node : request.getNodes()) loader.load(node);

  std::vector<std::string> errors;
  std::vector<std::pair<std::string, std::string>> outputs;
  for (auto file : request.getRequestedFiles()) {
    troupe::codegen::FileModel model = troupe::codegen::BuildModel(loader, request, file, errors);
    outputs.emplace_back(model.header_path, troupe::codegen::EmitHeader(model));
    outputs.emplace_back(model.source_path, troupe::codegen::EmitSource(model));
  }
  if (!errors.empty()) {
    for (const std::string& e : errors) std::fprintf(stderr, "capnpc-troupe: %s\n", e.c_str());
    std::fprintf(stderr, "capnpc-troupe: %zu error(s); see docs/messages.md for what troupe messages support\n",
                 errors.size());
    return 1;
  }
  for (const auto& [path, content] : outputs) {
    if (!WriteFile(path, content)) return 1;
  }
  return 0;
}

}  // namespace

int main() {
  try {
    return Run();
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "capnpc-troupe: %s\n", e.getDescription().cStr());
    return 1;
  }
}
