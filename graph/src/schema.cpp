#include "flowrun/schema.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace flowrun {
namespace {

std::string format_number(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream out;
  out.precision(10);
  out << v;
  return out.str();
}

template <typename T, typename F>
std::string format_list(const std::vector<T>& items, F format_one) {
  std::string text = "[";
  for (std::size_t i = 0; i < items.size(); ++i) text += (i ? ", " : "") + format_one(items[i]);
  return text + "]";
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

const char* param_type_name(ParamType type) {
  switch (type) {
    case ParamType::Bool: return "boolean";
    case ParamType::Int: return "integer";
    case ParamType::Float: return "number";
    case ParamType::String: return "string";
    case ParamType::Choice: return "choice";
    case ParamType::IntList: return "list of integers";
    case ParamType::FloatList: return "list of numbers";
    case ParamType::StringList: return "list of strings";
  }
  return "?";
}

std::string format_param_value(const ParamValue& value) {
  struct Visitor {
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(std::int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const { return format_number(v); }
    std::string operator()(const std::string& v) const { return quoted(v); }
    std::string operator()(const std::vector<std::int64_t>& v) const {
      return format_list(v, [](std::int64_t x) { return std::to_string(x); });
    }
    std::string operator()(const std::vector<double>& v) const { return format_list(v, format_number); }
    std::string operator()(const std::vector<std::string>& v) const { return format_list(v, quoted); }
  };
  return std::visit(Visitor{}, value);
}

ParamSpec::ParamSpec(std::string name, ParamType type, std::optional<ParamValue> default_value, std::string doc)
    : name_(std::move(name)), type_(type), default_(std::move(default_value)), doc_(std::move(doc)) {}

ParamSpec& ParamSpec::min(double lo) {
  lower_ = lo;
  return *this;
}
ParamSpec& ParamSpec::max(double hi) {
  upper_ = hi;
  return *this;
}
ParamSpec& ParamSpec::min_length(std::size_t n) {
  min_len_ = n;
  return *this;
}
ParamSpec& ParamSpec::max_length(std::size_t n) {
  max_len_ = n;
  return *this;
}
ParamSpec& ParamSpec::ascending() {
  ascending_ = true;
  return *this;
}

std::string ParamSpec::describe_constraint() const {
  if (type_ == ParamType::Choice) {
    std::string text;
    for (const std::string& c : choices_) text += (text.empty() ? "" : " | ") + c;
    return text;
  }
  std::string bounds;
  bool has_lower = !std::isinf(lower_);
  bool has_upper = !std::isinf(upper_);
  if (has_lower && has_upper) {
    bounds = "[" + format_number(lower_) + ", " + format_number(upper_) + "]";
  } else if (has_lower) {
    bounds = ">= " + format_number(lower_);
  } else if (has_upper) {
    bounds = "<= " + format_number(upper_);
  }
  bool is_list = type_ == ParamType::IntList || type_ == ParamType::FloatList || type_ == ParamType::StringList;
  if (!is_list) return bounds;
  std::string count;
  if (min_len_ == max_len_) {
    count = std::to_string(min_len_) + " values";
  } else if (max_len_ != std::numeric_limits<std::size_t>::max()) {
    count = std::to_string(min_len_) + " to " + std::to_string(max_len_) + " values";
  } else if (min_len_ > 0) {
    count = "at least " + std::to_string(min_len_) + " values";
  }
  if (ascending_) count += count.empty() ? "ascending" : ", ascending";
  if (bounds.empty()) return count;
  return count.empty() ? "each " + bounds : count + ", each " + bounds;
}

ParamSpec& Schema::add(ParamSpec spec) {
  if (find(spec.name())) throw std::logic_error("parameter '" + spec.name() + "' declared twice");
  if (spec.doc().empty()) throw std::logic_error("parameter '" + spec.name() + "' has no doc");
  spec.group_ = group_;
  specs_.push_back(std::move(spec));
  return specs_.back();
}

ParamSpec& Schema::boolean(const std::string& name, bool default_value, const std::string& doc) {
  return add(ParamSpec(name, ParamType::Bool, ParamValue(default_value), doc));
}
ParamSpec& Schema::integer(const std::string& name, std::int64_t default_value, const std::string& doc) {
  return add(ParamSpec(name, ParamType::Int, ParamValue(default_value), doc));
}
ParamSpec& Schema::number(const std::string& name, double default_value, const std::string& doc) {
  return add(ParamSpec(name, ParamType::Float, ParamValue(default_value), doc));
}
ParamSpec& Schema::string(const std::string& name, const std::string& default_value, const std::string& doc) {
  return add(ParamSpec(name, ParamType::String, ParamValue(default_value), doc));
}
ParamSpec& Schema::choice(const std::string& name, const std::string& default_value,
                          std::vector<std::string> choices, const std::string& doc) {
  ParamSpec& spec = add(ParamSpec(name, ParamType::Choice, ParamValue(default_value), doc));
  spec.choices_ = std::move(choices);
  return spec;
}
ParamSpec& Schema::integer_list(const std::string& name, std::vector<std::int64_t> default_value,
                                const std::string& doc) {
  return add(ParamSpec(name, ParamType::IntList, ParamValue(std::move(default_value)), doc));
}
ParamSpec& Schema::number_list(const std::string& name, std::vector<double> default_value, const std::string& doc) {
  return add(ParamSpec(name, ParamType::FloatList, ParamValue(std::move(default_value)), doc));
}
ParamSpec& Schema::string_list(const std::string& name, std::vector<std::string> default_value,
                               const std::string& doc) {
  return add(ParamSpec(name, ParamType::StringList, ParamValue(std::move(default_value)), doc));
}
ParamSpec& Schema::required(const std::string& name, ParamType type, const std::string& doc,
                            std::vector<std::string> choices) {
  ParamSpec& spec = add(ParamSpec(name, type, std::nullopt, doc));
  spec.choices_ = std::move(choices);
  return spec;
}

const ParamSpec* Schema::find(const std::string& name) const {
  for (const ParamSpec& s : specs_)
    if (s.name() == name) return &s;
  return nullptr;
}

std::vector<std::string> Schema::names() const {
  std::vector<std::string> out;
  for (const ParamSpec& s : specs_) out.push_back(s.name());
  return out;
}

template <typename T>
const T& Params::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw std::logic_error("stage asked for undeclared parameter '" + name + "'");
  const T* value = std::get_if<T>(&it->second);
  if (!value) throw std::logic_error("stage read parameter '" + name + "' with the wrong type");
  return *value;
}

template const bool& Params::get<bool>(const std::string&) const;
template const std::int64_t& Params::get<std::int64_t>(const std::string&) const;
template const double& Params::get<double>(const std::string&) const;
template const std::string& Params::get<std::string>(const std::string&) const;
template const std::vector<std::int64_t>& Params::get<std::vector<std::int64_t>>(const std::string&) const;
template const std::vector<double>& Params::get<std::vector<double>>(const std::string&) const;
template const std::vector<std::string>& Params::get<std::vector<std::string>>(const std::string&) const;

}  // namespace flowrun
