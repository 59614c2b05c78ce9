// Options structs (flowrun/options.hpp): one declaration per parameter gives the
// schema entry, with the field's initializer as its default, and reads the value back.
#include <gtest/gtest.h>

#include "flowrun/options.hpp"

namespace flowrun::testing {
namespace {

enum class Mode { Fast, Exact, Off };

struct ToyOptions {
  double sigma = 1.5;
  int passes = 2;
  std::int64_t seed = -1;
  bool enabled = true;
  std::string label = "toy";
  Mode mode = Mode::Exact;
  std::vector<double> mean = {0.5, 0.25};
  std::vector<std::int64_t> sizes = {};
  std::vector<std::string> names = {"a"};
  std::vector<std::int64_t> size;

  template <typename D>
  static void declare(D& d) {
    d.group("Shape");
    d.required(&ToyOptions::size, "size", "[height, width]").length(2);
    d(&ToyOptions::sigma, "sigma", "Gaussian sigma").range(0.1, 10);
    d(&ToyOptions::passes, "passes", "how many passes").range(1, 8);
    d(&ToyOptions::seed, "seed", "a seed; -1 = the run's").min(-1);
    d.group("Behaviour");
    d(&ToyOptions::enabled, "enabled", "on or off");
    d(&ToyOptions::label, "label", "a name");
    d(&ToyOptions::mode, "mode", "how", {{"fast", Mode::Fast}, {"exact", Mode::Exact}, {"off", Mode::Off}});
    d(&ToyOptions::mean, "mean", "per channel").max_length(4);
    d(&ToyOptions::sizes, "sizes", "sizes").min(1);
    d(&ToyOptions::names, "names", "names");
  }
};

TEST(Options, TheDeclarationMakesTheSchemaWithTheFieldsDefaultsAndGroups) {
  Schema s;
  declare_options<ToyOptions>(s);
  ASSERT_EQ(s.names(), (std::vector<std::string>{"size", "sigma", "passes", "seed", "enabled", "label", "mode", "mean", "sizes",
                                                 "names"}));
  EXPECT_TRUE(s.find("size")->required());
  EXPECT_EQ(s.find("size")->type(), ParamType::IntList);
  EXPECT_EQ(std::get<double>(*s.find("sigma")->default_value()), 1.5);
  EXPECT_EQ(s.find("sigma")->upper(), 10);
  EXPECT_EQ(std::get<std::int64_t>(*s.find("passes")->default_value()), 2);
  EXPECT_EQ(s.find("passes")->type(), ParamType::Int);
  EXPECT_EQ(s.find("mode")->type(), ParamType::Choice);
  EXPECT_EQ(std::get<std::string>(*s.find("mode")->default_value()), "exact");
  EXPECT_EQ(s.find("mode")->choices(), (std::vector<std::string>{"fast", "exact", "off"}));
  EXPECT_EQ(std::get<std::vector<double>>(*s.find("mean")->default_value()), (std::vector<double>{0.5, 0.25}));
  EXPECT_EQ(s.find("mean")->max_len(), 4u);
  EXPECT_EQ(s.find("sigma")->group(), "Shape");
  EXPECT_EQ(s.find("names")->group(), "Behaviour");
}

TEST(Options, ReadsValidatedValuesIntoTheFieldsAndChoicesAsEnums) {
  std::map<std::string, ParamValue> values = {{"sigma", 3.0},
                                              {"passes", std::int64_t{5}},
                                              {"seed", std::int64_t{7}},
                                              {"enabled", false},
                                              {"label", std::string("x")},
                                              {"mode", std::string("off")},
                                              {"mean", std::vector<double>{0.1}},
                                              {"sizes", std::vector<std::int64_t>{3, 4}},
                                              {"names", std::vector<std::string>{"b", "c"}},
                                              {"size", std::vector<std::int64_t>{8, 6}}};
  const ToyOptions o = read_options<ToyOptions>(Params(values));
  EXPECT_EQ(o.sigma, 3.0);
  EXPECT_EQ(o.passes, 5);
  EXPECT_EQ(o.seed, 7);
  EXPECT_FALSE(o.enabled);
  EXPECT_EQ(o.label, "x");
  EXPECT_EQ(o.mode, Mode::Off);
  EXPECT_EQ(o.mean, (std::vector<double>{0.1}));
  EXPECT_EQ(o.sizes, (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(o.names, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(o.size, (std::vector<std::int64_t>{8, 6}));
}

struct BadDefault {
  Mode mode = Mode::Off;
  template <typename D>
  static void declare(D& d) {
    d(&BadDefault::mode, "mode", "how", {{"fast", Mode::Fast}, {"exact", Mode::Exact}});
  }
};

TEST(Options, ADefaultOutsideTheChoicesIsAProgrammingError) {
  Schema s;
  EXPECT_THROW(declare_options<BadDefault>(s), std::logic_error);
}

}  // namespace
}  // namespace flowrun::testing
