// The files of a checked-in corpus directory, for the corpus tests.
//
// Who may call what: any thread.

#ifndef TROUPE_NET_FUZZ_CORPUS_FILES_H_
#define TROUPE_NET_FUZZ_CORPUS_FILES_H_

#include <cstdint>
#include <string>
#include <vector>

namespace troupe::net::fuzz {

struct CorpusFile {
  std::string name;  // the file name, without the directory
  std::vector<uint8_t> bytes;
};

// Every regular file in `dir` (relative to the test's working directory,
// the workspace's runfiles), sorted by name.
std::vector<CorpusFile> ReadCorpus(const std::string& dir);

}  // namespace troupe::net::fuzz

#endif  // TROUPE_NET_FUZZ_CORPUS_FILES_H_
