#include "net/fuzz/corpus_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace troupe::net::fuzz {

std::vector<CorpusFile> ReadCorpus(const std::string& dir) {
  std::vector<CorpusFile> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    files.push_back(CorpusFile{entry.path().filename().string(),
                               std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>())});
  }
  std::sort(files.begin(), files.end(), [](const CorpusFile& a, const CorpusFile& b) { return a.name < b.name; });
  return files;
}

}  // namespace troupe::net::fuzz
