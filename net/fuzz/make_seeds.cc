// Writes the seed corpus (seeds.h) into a directory, one file per seed,
// replacing files of the same name and leaving others (inputs the fuzzer
// found) alone:
//
//   ./tools/bazel run //net/fuzz:make_seeds -- "$PWD/net/fuzz/corpus"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "net/fuzz/seeds.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir(argv[1]);
  std::filesystem::create_directories(dir);
  int written = 0;
  for (const troupe::net::fuzz::Seed& seed : troupe::net::fuzz::MakeSeeds()) {
    std::ofstream out(dir / seed.name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(seed.bytes.data()), static_cast<std::streamsize>(seed.bytes.size()));
    if (!out) {
      std::fprintf(stderr, "make_seeds: cannot write %s\n", (dir / seed.name).c_str());
      return 1;
    }
    ++written;
  }
  std::fprintf(stderr, "make_seeds: %d seeds in %s\n", written, dir.c_str());
  return 0;
}
