// A stage's parameters as one struct, each declared once: the field's type and
// initializer are its type and default, and one line in the struct's `declare`
// gives its name, doc and range. The same declaration makes the schema entry
// (validation, `flowrun plugins`, the reference docs) and reads the validated value
// into the field, so the two cannot disagree; choices arrive as enums.
//
//   enum class Mode { Fast, Exact };
//   struct BlurOptions {
//     double sigma = 1.0;
//     Mode mode = Mode::Fast;
//     template <typename D>
//     static void declare(D& d) {
//       d.group("Blur");
//       d(&BlurOptions::sigma, "sigma", "Gaussian sigma in pixels").range(0.1, 10);
//       d(&BlurOptions::mode, "mode", "speed or exactness", {{"fast", Mode::Fast}, {"exact", Mode::Exact}});
//     }
//   };
//   declare_options<BlurOptions>(plugin.params);                        // in the plugin declaration
//   const auto options = read_options<BlurOptions>(args.params);  // in the stage
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "flowrun/schema.hpp"

namespace flowrun {

// An enum parameter's values: the name a description uses for each.
template <typename E>
using Choices = std::vector<std::pair<std::string, E>>;

namespace options_detail {

template <typename T>
constexpr ParamType param_type_of();
template <>
constexpr ParamType param_type_of<bool>() { return ParamType::Bool; }
template <>
constexpr ParamType param_type_of<std::int64_t>() { return ParamType::Int; }
template <>
constexpr ParamType param_type_of<int>() { return ParamType::Int; }
template <>
constexpr ParamType param_type_of<double>() { return ParamType::Float; }
template <>
constexpr ParamType param_type_of<std::string>() { return ParamType::String; }
template <>
constexpr ParamType param_type_of<std::vector<std::int64_t>>() { return ParamType::IntList; }
template <>
constexpr ParamType param_type_of<std::vector<double>>() { return ParamType::FloatList; }
template <>
constexpr ParamType param_type_of<std::vector<std::string>>() { return ParamType::StringList; }

// Declares each field in a Schema, with the default of a default-constructed Options.
// Fields may sit in a base struct that several plugins' options share.
template <typename Options>
class SchemaDeclarer {
 public:
  explicit SchemaDeclarer(Schema& schema) : schema_(schema) {}
  void group(const std::string& name) { schema_.group(name); }

  template <typename C, typename T>
  ParamSpec& operator()(T C::*f, const std::string& name, const std::string& doc) {
    static_assert(std::is_base_of<C, Options>::value, "a field of another struct");
    const T& value = defaults_.*f;
    if constexpr (std::is_same<T, bool>::value) return schema_.boolean(name, value, doc);
    else if constexpr (std::is_same<T, int>::value || std::is_same<T, std::int64_t>::value)
      return schema_.integer(name, static_cast<std::int64_t>(value), doc);
    else if constexpr (std::is_same<T, double>::value) return schema_.number(name, value, doc);
    else if constexpr (std::is_same<T, std::string>::value) return schema_.string(name, value, doc);
    else if constexpr (std::is_same<T, std::vector<std::int64_t>>::value) return schema_.integer_list(name, value, doc);
    else if constexpr (std::is_same<T, std::vector<double>>::value) return schema_.number_list(name, value, doc);
    else {
      static_assert(std::is_same<T, std::vector<std::string>>::value, "a field type parameters cannot have");
      return schema_.string_list(name, value, doc);
    }
  }
  template <typename C, typename E>
  ParamSpec& operator()(E C::*f, const std::string& name, const std::string& doc, const Choices<E>& choices) {
    static_assert(std::is_base_of<C, Options>::value, "a field of another struct");
    std::vector<std::string> names;
    std::optional<std::string> default_name;
    for (const auto& [text, value] : choices) {
      names.push_back(text);
      if (value == defaults_.*f && !default_name) default_name = text;
    }
    if (!default_name) throw std::logic_error("parameter '" + name + "': the field's default is not among its choices");
    return schema_.choice(name, *default_name, std::move(names), doc);
  }
  // A parameter every description must set (no default).
  template <typename C, typename T>
  ParamSpec& required(T C::*, const std::string& name, const std::string& doc) {
    return schema_.required(name, param_type_of<T>(), doc);
  }

 private:
  Schema& schema_;
  Options defaults_{};
};

// Reads each validated value into its field. The constraints chained on a
// declaration were checked by validation already: here they go to a scratch spec.
template <typename Options>
class ValueReader {
 public:
  ValueReader(const Params& params, Options& out) : params_(params), out_(out) {}
  void group(const std::string&) {}

  template <typename C, typename T>
  ParamSpec& operator()(T C::*f, const std::string& name, const std::string&) {
    T& field = out_.*f;
    if constexpr (std::is_same<T, bool>::value) field = params_.boolean(name);
    else if constexpr (std::is_same<T, int>::value) field = static_cast<int>(params_.integer(name));
    else if constexpr (std::is_same<T, std::int64_t>::value) field = params_.integer(name);
    else if constexpr (std::is_same<T, double>::value) field = params_.number(name);
    else if constexpr (std::is_same<T, std::string>::value) field = params_.string(name);
    else if constexpr (std::is_same<T, std::vector<std::int64_t>>::value) field = params_.integer_list(name);
    else if constexpr (std::is_same<T, std::vector<double>>::value) field = params_.number_list(name);
    else field = params_.string_list(name);
    return scratch();
  }
  template <typename C, typename E>
  ParamSpec& operator()(E C::*f, const std::string& name, const std::string&, const Choices<E>& choices) {
    const std::string& text = params_.string(name);
    for (const auto& [choice, value] : choices) {
      if (choice != text) continue;
      out_.*f = value;
      return scratch();
    }
    throw std::logic_error("parameter '" + name + "': '" + text + "' is not among its choices");
  }
  template <typename C, typename T>
  ParamSpec& required(T C::*f, const std::string& name, const std::string& doc) {
    return (*this)(f, name, doc);
  }

 private:
  ParamSpec& scratch() { return scratch_ = ParamSpec("", ParamType::Bool, std::nullopt, ""); }
  const Params& params_;
  Options& out_;
  ParamSpec scratch_{"", ParamType::Bool, std::nullopt, ""};
};

}  // namespace options_detail

// The schema entries of every field of Options (Options::declare), added to `schema`.
template <typename Options>
void declare_options(Schema& schema) {
  options_detail::SchemaDeclarer<Options> declarer(schema);
  Options::declare(declarer);
}

// The validated parameters of a node, as Options.
template <typename Options>
Options read_options(const Params& params) {
  Options options;
  options_detail::ValueReader<Options> reader(params, options);
  Options::declare(reader);
  return options;
}

}  // namespace flowrun
