// Parameter schemas: every plugin declares its parameters here, once. The
// declaration drives validation of descriptions, `flowrun plugins NAME`, and the
// generated reference docs (docs/plugins.md), so they cannot drift apart.
//
//   Schema s;
//   s.integer("fail_at", kNever, "throw when this item index arrives; -1 = never").min(-1);
//   s.number("drop_probability", 0.0, "chance to drop each item").range(0, 1);
//   s.choice("policy", "skip", {"skip", "fail"}, "what to do with a corrupt file");
//
// A stage reads the validated, typed values through Params (params.integer("fail_at")).
// This header deliberately has no JSON dependency: values are plain C++ types.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace flowrun {

enum class ParamType { Bool, Int, Float, String, Choice, IntList, FloatList, StringList };

// Name as written in docs and error messages ("integer", "list of numbers", ...).
const char* param_type_name(ParamType type);

using ParamValue = std::variant<bool, std::int64_t, double, std::string, std::vector<std::int64_t>,
                                std::vector<double>, std::vector<std::string>>;

// Renders a value the way it would be written in JSON ("0.5", "\"skip\"", "[1, 2]").
std::string format_param_value(const ParamValue& value);

class ParamSpec {
 public:
  ParamSpec(std::string name, ParamType type, std::optional<ParamValue> default_value, std::string doc);

  // Chainable constraints. For lists, min/max bound every element.
  ParamSpec& min(double lo);
  ParamSpec& max(double hi);
  ParamSpec& range(double lo, double hi) { return min(lo).max(hi); }
  ParamSpec& length(std::size_t n) { return min_length(n).max_length(n); }
  ParamSpec& min_length(std::size_t n);
  ParamSpec& max_length(std::size_t n);
  // Lists: values in ascending order (a [low, high] range with low <= high).
  ParamSpec& ascending();

  const std::string& name() const { return name_; }
  ParamType type() const { return type_; }
  const std::string& doc() const { return doc_; }
  const std::string& group() const { return group_; }  // its heading ("" = none), see Schema::group
  bool required() const { return !default_.has_value(); }
  const std::optional<ParamValue>& default_value() const { return default_; }
  const std::vector<std::string>& choices() const { return choices_; }
  double lower() const { return lower_; }
  double upper() const { return upper_; }
  std::size_t min_len() const { return min_len_; }
  std::size_t max_len() const { return max_len_; }
  bool is_ascending() const { return ascending_; }

  // Human-readable constraint: "[0, 1]", ">= 1", "skip | fail", "3 values in [0, 1]", "".
  std::string describe_constraint() const;

 private:
  friend class Schema;
  std::string name_;
  ParamType type_;
  std::optional<ParamValue> default_;
  std::string doc_;
  std::string group_;
  std::vector<std::string> choices_;
  double lower_ = -std::numeric_limits<double>::infinity();
  double upper_ = std::numeric_limits<double>::infinity();
  std::size_t min_len_ = 0;
  std::size_t max_len_ = std::numeric_limits<std::size_t>::max();
  bool ascending_ = false;
};

class Schema {
 public:
  // Parameters declared from here on belong to `name`, a heading under which
  // `flowrun plugins` and the reference docs list them ("Optimizer", "Checkpoints").
  Schema& group(const std::string& name) {
    group_ = name;
    return *this;
  }
  // Optional parameters (with a default).
  ParamSpec& boolean(const std::string& name, bool default_value, const std::string& doc);
  ParamSpec& integer(const std::string& name, std::int64_t default_value, const std::string& doc);
  ParamSpec& number(const std::string& name, double default_value, const std::string& doc);
  ParamSpec& string(const std::string& name, const std::string& default_value, const std::string& doc);
  ParamSpec& choice(const std::string& name, const std::string& default_value,
                    std::vector<std::string> choices, const std::string& doc);
  ParamSpec& integer_list(const std::string& name, std::vector<std::int64_t> default_value,
                          const std::string& doc);
  ParamSpec& number_list(const std::string& name, std::vector<double> default_value, const std::string& doc);
  ParamSpec& string_list(const std::string& name, std::vector<std::string> default_value,
                         const std::string& doc);
  // A parameter the description must set: no default.
  ParamSpec& required(const std::string& name, ParamType type, const std::string& doc,
                      std::vector<std::string> choices = {});

  const std::vector<ParamSpec>& specs() const { return specs_; }
  const ParamSpec* find(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  ParamSpec& add(ParamSpec spec);
  std::vector<ParamSpec> specs_;
  std::string group_;
};

// Validated parameter values of one node: every declared parameter is present,
// typed as declared and within its range. Asking for an undeclared name or the
// wrong type is a programming error in the stage and throws std::logic_error.
class Params {
 public:
  Params() = default;
  explicit Params(std::map<std::string, ParamValue> values) : values_(std::move(values)) {}

  bool boolean(const std::string& name) const { return get<bool>(name); }
  std::int64_t integer(const std::string& name) const { return get<std::int64_t>(name); }
  double number(const std::string& name) const { return get<double>(name); }
  const std::string& string(const std::string& name) const { return get<std::string>(name); }
  const std::vector<std::int64_t>& integer_list(const std::string& name) const {
    return get<std::vector<std::int64_t>>(name);
  }
  const std::vector<double>& number_list(const std::string& name) const { return get<std::vector<double>>(name); }
  const std::vector<std::string>& string_list(const std::string& name) const {
    return get<std::vector<std::string>>(name);
  }
  const std::map<std::string, ParamValue>& values() const { return values_; }

 private:
  template <typename T>
  const T& get(const std::string& name) const;
  std::map<std::string, ParamValue> values_;
};

}  // namespace flowrun
