#include "stages/messages/evaluation.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace flowrun {

std::string Evaluation::describe() const {
  return "evaluation epoch " + std::to_string(epoch) + " step " + std::to_string(step) + " accuracy " +
         std::to_string(metrics ? metrics->accuracy() : 0.0) + ", " + std::to_string(worst.size()) + " worst samples";
}

void WorstSamples::add(Misclassified sample) {
  if (!wants(sample.loss)) return;
  const auto at = std::upper_bound(worst_.begin(), worst_.end(), sample.loss,
                                   [](double loss, const Misclassified& m) { return loss > m.loss; });
  worst_.insert(at, std::move(sample));
  if (worst_.size() > n_) worst_.pop_back();
}

namespace {

template <typename T>
void put(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

void put_bytes(std::string& out, const void* data, std::size_t size) {
  put(out, static_cast<std::uint64_t>(size));
  out.append(static_cast<const char*>(data), size);
}

class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}
  bool done() const { return at_ == bytes_.size(); }
  template <typename T>
  T get() {
    T value;
    std::memcpy(&value, take(sizeof value), sizeof value);
    return value;
  }
  std::string bytes() {
    const auto size = get<std::uint64_t>();
    return std::string(take(size), size);
  }

 private:
  const char* take(std::size_t size) {
    if (bytes_.size() - at_ < size) throw std::runtime_error("a packed list of worst samples is cut short");
    const char* p = bytes_.data() + at_;
    at_ += size;
    return p;
  }
  const std::string& bytes_;
  std::size_t at_ = 0;
};

}  // namespace

// Same machine, same build on every rank: the numbers travel in native byte order.
std::string WorstSamples::pack() const {
  std::string out;
  for (const Misclassified& m : worst_) {
    put_bytes(out, m.key.data(), m.key.size());
    put(out, m.label);
    put(out, m.predicted);
    put(out, m.confidence);
    put(out, m.loss);
    put(out, m.thumbnail.width);
    put(out, m.thumbnail.height);
    put_bytes(out, m.thumbnail.rgb.data(), m.thumbnail.rgb.size());
  }
  return out;
}

void WorstSamples::add_packed(const std::string& bytes) {
  Reader in(bytes);
  while (!in.done()) {
    Misclassified m;
    m.key = in.bytes();
    m.label = in.get<std::int64_t>();
    m.predicted = in.get<std::int64_t>();
    m.confidence = in.get<double>();
    m.loss = in.get<double>();
    m.thumbnail.width = in.get<int>();
    m.thumbnail.height = in.get<int>();
    const std::string rgb = in.bytes();
    m.thumbnail.rgb.assign(rgb.begin(), rgb.end());
    add(std::move(m));
  }
}

}  // namespace flowrun
