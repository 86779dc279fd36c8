// Writes the seed corpora into directories, one file per seed, replacing
// files of the same name and leaving others (inputs the fuzzer found)
// alone: the frame fuzzer's (seeds.h) into the first, the node fuzzer's
// (node_seeds.h) into the second, if given:
//
//   ./tools/bazel run //net/fuzz:make_seeds -- "$PWD/net/fuzz/corpus" "$PWD/net/fuzz/node_corpus"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "net/fuzz/node_seeds.h"
#include "net/fuzz/seeds.h"

namespace {

bool Write(const std::filesystem::path& dir, const std::string& name, const std::vector<uint8_t>& bytes) {
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) std::fprintf(stderr, "make_seeds: cannot write %s\n", (dir / name).c_str());
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: %s FRAME_CORPUS_DIR [NODE_CORPUS_DIR]\n", argv[0]);
    return 2;
  }
  const std::filesystem::path frames(argv[1]);
  std::filesystem::create_directories(frames);
  int written = 0;
  for (const troupe::net::fuzz::Seed& seed : troupe::net::fuzz::MakeSeeds()) {
    if (!Write(frames, seed.name, seed.bytes)) return 1;
    ++written;
  }
  std::fprintf(stderr, "make_seeds: %d seeds in %s\n", written, frames.c_str());
  if (argc == 3) {
    const std::filesystem::path nodes(argv[2]);
    std::filesystem::create_directories(nodes);
    written = 0;
    for (const troupe::net::fuzz::NodeSeed& seed : troupe::net::fuzz::MakeNodeSeeds()) {
      if (!Write(nodes, seed.name, seed.bytes)) return 1;
      ++written;
    }
    std::fprintf(stderr, "make_seeds: %d seeds in %s\n", written, nodes.c_str());
  }
  return 0;
}
