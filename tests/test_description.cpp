// Every malformed description is refused before anything runs, with the JSON
// pointer of the value at fault and what was expected.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "flowrun/errors.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

// Validates `json` and returns the problems (fails the test if it validates).
std::vector<Problem> problems_of(const std::string& json, const std::vector<std::string>& sets = {}) {
  try {
    describe(json, sets);
  } catch (const DescriptionError& e) {
    return e.problems();
  }
  ADD_FAILURE() << "description was accepted:\n" << json;
  return {};
}

// Asserts one problem at `pointer` whose message contains every fragment.
void expect_problem(const std::vector<Problem>& problems, const std::string& pointer,
                    const std::vector<std::string>& fragments) {
  for (const Problem& p : problems) {
    if (p.pointer != pointer) continue;
    bool all = true;
    for (const std::string& f : fragments) all = all && p.message.find(f) != std::string::npos;
    if (all) return;
  }
  std::string seen;
  for (const Problem& p : problems) seen += "  " + p.pointer + ": " + p.message + "\n";
  ADD_FAILURE() << "no problem at '" << pointer << "' containing the expected text; got:\n" << seen;
}

// A valid pipeline to break one piece at a time.
std::string with_nodes(const std::string& nodes, const std::string& edges) {
  return R"({"name": "t", "nodes": [)" + nodes + R"(], "edges": [)" + edges + "]}";
}
const char* const kSrc = R"({"id": "src", "plugin": "counter_source"})";
const char* const kSink = R"({"id": "sink", "plugin": "collect"})";

TEST(Description, ValidPipelineIsAcceptedWithDefaultsFilledIn) {
  const Description d = describe(with_nodes(std::string(kSrc) + R"(, {"id": "mid", "plugin": "test.needs_params",
      "params": {"size": 3}}, )" + kSink, R"("src -> mid -> sink")"));
  ASSERT_EQ(d.nodes.size(), 3u);
  EXPECT_EQ(d.nodes[1].params.integer("size"), 3);
  EXPECT_EQ(d.nodes[1].params.string("mode"), "fast");
  EXPECT_EQ(d.nodes[1].params.number_list("mean"), (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_EQ(d.nodes[1].params.number("scale"), 1.0);
  ASSERT_EQ(d.edges.size(), 2u);
  EXPECT_EQ(d.edges[0].kind, "number");
  EXPECT_EQ(d.edges[1].kind, "number");  // "same" resolved through the map stage
  EXPECT_EQ(d.topological_order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(d.prefetch, 256);
}

TEST(Description, MalformedJsonGivesLineAndColumn) {
  try {
    describe("{\n  \"name\": \"t\",\n  \"nodes\": [ {\"id\": \"a\",, } ]\n}");
    FAIL();
  } catch (const DescriptionError& e) {
    EXPECT_NE(std::string(e.what()).find("malformed JSON at line 3, column"), std::string::npos) << e.what();
  }
}

// JSON keeps only the last of two equal keys; a description that repeats one would run
// with a setting its author may not have meant, so it is refused where it happens.
TEST(Description, ARepeatedKeyIsRefusedWithItsPlace) {
  for (const auto& [text, pointer] : std::vector<std::pair<std::string, std::string>>{
           {R"({"name": "t", "seed": 1, "seed": 2})", ""},
           {R"({"name": "t", "nodes": [{"id": "a"}, {"id": "b", "params": {"lr": 1, "x": [1, {"y": 2}], "lr": 2}}]})",
            "/nodes/1/params"},
           {R"({"name": "t", "a": [[1, 2], [3, {"k": 1, "k": 1}]]})", "/a/1/1"}}) {
    try {
      describe(text);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const DescriptionError& e) {
      ASSERT_EQ(e.problems().size(), 1u) << e.what();
      EXPECT_EQ(e.problems()[0].pointer, pointer) << e.what();
      EXPECT_NE(std::string(e.what()).find("appears twice"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(parse_description_json(R"({"a": {"k": 1}, "b": {"k": 2}, "c": [{"k": 1}, {"k": 2}]})", "same keys apart"));
  nlohmann::json doc = parse_description_json(R"({"name": "t"})", "t");
  try {
    apply_overrides(doc, {R"(nodes={"a": 1, "a": 2})"});
    ADD_FAILURE() << "a --set value with a repeated key was accepted";
  } catch (const DescriptionError& e) {
    EXPECT_NE(std::string(e.what()).find("appears twice"), std::string::npos) << e.what();
  }
}

TEST(Description, UnknownPluginSuggestsClosestNames) {
  expect_problem(problems_of(with_nodes(R"({"id": "src", "plugin": "countr_source"}, )" + std::string(kSink),
                                        R"("src -> sink")")),
                 "/nodes/0/plugin", {"unknown plugin 'countr_source'", "did you mean 'counter_source'"});
}

TEST(Description, UnknownParameterSuggestsAndListsParameters) {
  expect_problem(problems_of(with_nodes(std::string(kSrc) + R"(, {"id": "m", "plugin": "test.needs_params",
      "params": {"size": 2, "scael": 0.5}}, )" + kSink, R"("src -> m -> sink")")),
                 "/nodes/1/params/scael", {"has no parameter 'scael'", "did you mean 'scale'", "mean, scale"});
}

TEST(Description, MissingRequiredParameter) {
  expect_problem(problems_of(with_nodes(std::string(kSrc) + R"(, {"id": "m", "plugin": "test.needs_params"}, )" +
                                            kSink, R"("src -> m -> sink")")),
                 "/nodes/1/params", {"missing required parameter 'size'", "integer"});
}

TEST(Description, MistypedAndOutOfRangeParameters) {
  const auto problems = problems_of(with_nodes(std::string(kSrc) + R"(, {"id": "m", "plugin": "test.needs_params",
      "params": {"size": "big", "scale": 1.5, "mode": "fats", "mean": [0.1, 2]}}, )" + kSink, R"("src -> m -> sink")"));
  expect_problem(problems, "/nodes/1/params/size", {"expected an integer", "string \"big\""});
  expect_problem(problems, "/nodes/1/params/scale", {"expected number in [0, 1], got 1.5"});
  expect_problem(problems, "/nodes/1/params/mode", {"one of fast | slow", "did you mean 'fast'"});
  expect_problem(problems, "/nodes/1/params/mean", {"expected 3 values", "got 2"});
}

TEST(Description, DuplicateNodeId) {
  expect_problem(problems_of(with_nodes(std::string(kSrc) + ", " + kSrc + ", " + kSink, R"("src -> sink")")),
                 "/nodes/1/id", {"duplicate node id 'src'", "/nodes/0"});
}

TEST(Description, EmptyPluginNameAndNodeIdAreRefusedByPointer) {
  const auto problems = problems_of(with_nodes(R"({"id": "src", "plugin": ""}, {"id": "", "plugin": "collect"})",
                                               R"("src -> sink")"));
  expect_problem(problems, "/nodes/0/plugin", {"empty plugin name", "flowrun plugins"});
  expect_problem(problems, "/nodes/1/id", {"empty node id"});
}

TEST(Description, EdgeToARetiredPortSaysHowToMigrate) {
  // A pipeline written before evaluation moved into its own node fed eval batches to
  // train.eval and test batches to train.test.
  nlohmann::json doc = nlohmann::json::parse(read_file(source_dir() + "/pipelines/quickstart.json"), nullptr, true, true);
  nlohmann::json edges = nlohmann::json::array();
  for (const auto& e : doc["edges"]) {
    std::string edge = e.get<std::string>();
    if (edge.find("-> eval.model") != std::string::npos) continue;
    const std::size_t at = edge.find("eval.batch");
    if (at != std::string::npos) edge.replace(at, 10, "train.eval");
    edges.push_back(edge);
  }
  doc["edges"] = edges;
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : doc["nodes"])
    if (n["id"] != "eval") nodes.push_back(n);
  doc["nodes"] = nodes;
  const auto problems = problems_of(doc.dump());
  bool found = false;
  for (const Problem& p : problems)
    found = found || (p.message.find("has no input port 'eval' any more") != std::string::npos &&
                      p.message.find("\"plugin\": \"evaluate\"") != std::string::npos &&
                      p.message.find("train.model -> eval.model") != std::string::npos &&
                      p.message.find("eval.batch") != std::string::npos);
  std::string seen;
  for (const Problem& p : problems) seen += "  " + p.pointer + ": " + p.message + "\n";
  EXPECT_TRUE(found) << seen;
  expect_problem(problems_of(with_nodes(std::string(kSrc) + R"(, {"id": "train", "plugin": "train"})",
                                        R"("src -> train.test")")),
                 "/edges/0", {"no input port 'test' any more", "train.final_model -> test.model"});
}

TEST(Description, EdgeToUnknownNodeOrPort) {
  const auto problems = problems_of(
      with_nodes(std::string(kSrc) + ", " + kSink, R"("src -> snk", "src.output -> sink", "src -> sink.inn")"));
  expect_problem(problems, "/edges/0", {"unknown node 'snk'", "did you mean 'sink'"});
  expect_problem(problems, "/edges/1", {"no output port 'output'", "its output ports: out"});
  expect_problem(problems, "/edges/2", {"no input port 'inn'", "did you mean 'in'"});
}

TEST(Description, PortKindsMustMatch) {
  expect_problem(problems_of(with_nodes(R"({"id": "bytes", "plugin": "test.bytes_source"},
      {"id": "sink", "plugin": "test.pixels_sink"})", R"("bytes -> sink")")),
                 "/edges/0", {"kind mismatch", "carries 'test/bytes'", "expects 'test/pixels'"});
  // With the converting stage in between, the same two are fine.
  EXPECT_NO_THROW(describe(with_nodes(R"({"id": "bytes", "plugin": "test.bytes_source"},
      {"id": "decode", "plugin": "test.decode"}, {"id": "sink", "plugin": "test.pixels_sink"})",
                                      R"("bytes -> decode -> sink")")));
}

TEST(Description, KindsPassThroughSameKindStages) {
  // identity's output is "same": bytes through identity still may not reach a pixels sink.
  expect_problem(problems_of(with_nodes(R"({"id": "bytes", "plugin": "test.bytes_source"},
      {"id": "id", "plugin": "identity"}, {"id": "sink", "plugin": "test.pixels_sink"})",
                                        R"("bytes -> id -> sink")")),
                 "/edges/0", {"kind mismatch", "'test/bytes'"});
}

TEST(Description, CyclesAreRefusedAndShown) {
  expect_problem(problems_of(with_nodes(std::string(kSrc) + R"(, {"id": "a", "plugin": "test.two_inputs"},
      {"id": "b", "plugin": "identity"})", R"("src -> a.a", "a -> b", "b -> a.b")")),
                 "/edges", {"cycle", "a -> b -> a"});
}

TEST(Description, RequiredInputLeftUnconnected) {
  expect_problem(problems_of(with_nodes(std::string(kSrc) + ", " + kSink + R"(, {"id": "lonely", "plugin": "identity"})",
                                        R"("src -> sink")")),
                 "/nodes/2", {"input port 'in' of node 'lonely'", "not connected"});
}

TEST(Description, OneEdgePerInput) {
  expect_problem(problems_of(with_nodes(std::string(kSrc) + R"(, {"id": "src2", "plugin": "counter_source"}, )" + kSink,
                                        R"("src -> sink", "src2 -> sink")")),
                 "/edges/1", {"already has an edge"});
}

TEST(Description, AmbiguousPortMustBeNamed) {
  expect_problem(problems_of(with_nodes(std::string(kSrc) + R"(, {"id": "j", "plugin": "test.two_inputs"}, )" + kSink,
                                        R"("src -> j", "j -> sink")")),
                 "/edges/0", {"several input ports (a, b)", "j.a"});
}

TEST(Description, TopLevelAndNodeKeysAreChecked) {
  const auto problems = problems_of(R"({"name": "t", "seeed": 3, "prefetch": 1, "device": "gpu",
      "nodes": [{"id": "src", "plugin": "counter_source", "params": {}, "concurency": 2},
                {"id": "sink.x", "plugin": "collect", "concurrency": 2}],
      "edges": ["src -> sink.x"]})");
  expect_problem(problems, "/seeed", {"unknown key 'seeed'", "did you mean 'seed'"});
  expect_problem(problems, "/prefetch", {"expected an integer >= 2"});
  expect_problem(problems, "/device", {"\"auto\", \"cpu\", \"cuda\""});
  expect_problem(problems, "/nodes/0/concurency", {"unknown node key", "did you mean 'concurrency'"});
  expect_problem(problems, "/nodes/1/id", {"may only use letters"});
  expect_problem(problems, "/nodes/1/concurrency", {"applies to map (per-item) stages", "ordered"});
}

TEST(Description, MissingNameNodesAndSource) {
  expect_problem(problems_of(R"({"nodes": []})"), "", {"missing \"name\""});
  expect_problem(problems_of(R"({"name": "t", "nodes": []})"), "/nodes", {"non-empty array"});
  expect_problem(problems_of(R"({"name": "t", "nodes": [{"id": "x", "plugin": "collect"}], "edges": []})"), "/nodes/0",
                 {"not connected"});
}

TEST(Description, EveryProblemIsReportedAtOnce) {
  const auto problems = problems_of(with_nodes(R"({"id": "src", "plugin": "nope"}, {"id": "m",
      "plugin": "test.needs_params", "params": {"size": 0}}, )" + std::string(kSink), R"("src -> m -> sink")"));
  EXPECT_GE(problems.size(), 2u);
  expect_problem(problems, "/nodes/0/plugin", {"unknown plugin 'nope'"});
  expect_problem(problems, "/nodes/1/params/size", {"[1, 100]"});
}

TEST(Description, EdgeChainsAndPairsAreEquivalent) {
  const auto chain = describe(with_nodes(std::string(kSrc) + R"(, {"id": "mid", "plugin": "identity"}, )" + kSink,
                                         R"("src -> mid -> sink")"));
  const auto pairs = describe(with_nodes(std::string(kSrc) + R"(, {"id": "mid", "plugin": "identity"}, )" + kSink,
                                         R"(["src.out", "mid.in"], ["mid", "sink"])"));
  ASSERT_EQ(chain.edges.size(), pairs.edges.size());
  for (std::size_t i = 0; i < chain.edges.size(); ++i) {
    EXPECT_EQ(chain.edges[i].from_node, pairs.edges[i].from_node);
    EXPECT_EQ(chain.edges[i].to_node, pairs.edges[i].to_node);
  }
}

// --set

const std::string kAblation = with_nodes(std::string(kSrc) + R"(, {"id": "augment", "plugin": "identity"}, )" + kSink,
                                         R"("src -> augment -> sink")");

TEST(Overrides, SetPluginParamsAndTopLevelValues) {
  const Description d = describe(kAblation, {"nodes.augment.plugin=test.needs_params",
                                             "nodes.augment.params.size=5", "nodes.augment.params.mode=slow",
                                             "seed=99", "nodes.src.params.count=7", "nodes.1.params.scale=0.25"});
  EXPECT_EQ(d.nodes[1].plugin->name, "test.needs_params");
  EXPECT_EQ(d.nodes[1].params.integer("size"), 5);
  EXPECT_EQ(d.nodes[1].params.string("mode"), "slow");  // bare word taken as a string
  EXPECT_EQ(d.nodes[1].params.number("scale"), 0.25);
  EXPECT_EQ(d.nodes[0].params.integer("count"), 7);
  EXPECT_EQ(d.seed, 99u);
}

TEST(Overrides, OverriddenValuesGetTheSameChecks) {
  expect_problem(problems_of(kAblation, {"nodes.augment.params.drop_probability=3"}),
                 "/nodes/1/params/drop_probability", {"[0, 1]", "got 3"});
}

TEST(Overrides, BadPathsNameTheFlag) {
  try {
    describe(kAblation, {"nodes.augmnt.plugin=identity"});
    FAIL();
  } catch (const DescriptionError& e) {
    EXPECT_EQ(e.source(), "--set nodes.augmnt.plugin=identity");
    EXPECT_NE(std::string(e.what()).find("did you mean 'augment'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(describe(kAblation, {"no_equals_sign"}), DescriptionError);
  EXPECT_THROW(describe(kAblation, {"nodes.9.plugin=identity"}), DescriptionError);
  EXPECT_THROW(describe(kAblation, {"name.x=1"}), DescriptionError);
}

}  // namespace
}  // namespace flowrun::testing

namespace flowrun::testing {
namespace {

// Cross-parameter mistakes that used to surface in a stage's constructor at run time
// are found by validation, at the parameter's location.
TEST(Description, CrossParameterMistakesAreFoundBeforeTheRun) {
  expect_problem(problems_of(with_nodes(R"({"id": "src", "plugin": "tar", "params": {"paths": ["x.tar"]}},
      {"id": "decode", "plugin": "jpeg_decode"},
      {"id": "batch", "plugin": "batch", "params": {"mean": [0.5, 0.5, 0.5]}},
      {"id": "augment", "plugin": "randaugment", "params": {"magnitude": 40, "num_magnitude_bins": 31}},
      {"id": "sink", "plugin": "collect"})",
                                        R"("src -> decode -> augment -> batch -> sink")")),
                 "/nodes/2/params/std", {"set both mean and std, or neither"});
  expect_problem(problems_of(with_nodes(R"({"id": "src", "plugin": "tar", "params": {"paths": ["x.tar"]}},
      {"id": "decode", "plugin": "jpeg_decode"},
      {"id": "augment", "plugin": "randaugment", "params": {"magnitude": 40, "num_magnitude_bins": 31}},
      {"id": "sink", "plugin": "collect"})",
                                        R"("src -> decode -> augment -> sink")")),
                 "/nodes/2/params/magnitude", {"magnitude 40 must be below num_magnitude_bins 31"});
}

}  // namespace
}  // namespace flowrun::testing
