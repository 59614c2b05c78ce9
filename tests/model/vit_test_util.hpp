// Helpers for the ViT tests: the committed fixtures (tools/make_vit_fixtures.py)
// and small models.
#pragma once

#include <string>

#include "lib/model/safetensors.hpp"
#include "lib/model/vit.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {

inline std::string vit_fixture(const std::string& name) { return source_dir() + "/tests/fixtures/vit/" + name; }

// A float32 tensor of the expected-values fixture, copied out of the mapping.
inline torch::Tensor expected_tensor(const std::string& name) {
  auto file = SafetensorsFile::open(vit_fixture("expected.safetensors"));
  const TensorView* v = file->find(name);
  if (!v) throw std::runtime_error("fixture tensor missing: " + name);
  return torch::from_blob(const_cast<std::uint8_t*>(v->data), v->shape, torch::kFloat).clone();
}

// The shape tools/make_vit_fixtures.py builds its models with.
inline VitConfig fixture_config(int num_classes, VitPool pool, double eps) {
  VitConfig c;
  c.image_size = 32;
  c.patch_size = 8;
  c.width = 32;
  c.depth = 2;
  c.heads = 4;
  c.mlp_ratio = 2.0;
  c.num_classes = num_classes;
  c.pool = pool;
  c.layer_norm_eps = eps;
  return c;
}

}  // namespace flowrun::testing
