#include "forward.h"

#include "error.h"

namespace qisa {

std::vector<const Linear*> linears_by_id(const Model& m) {
  const WeightIds ids(m.config);
  std::vector<const Linear*> out(static_cast<size_t>(ids.linears()), nullptr);
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const Layer& L = m.layers[l];
    const auto li = static_cast<int64_t>(l);
    out[ids.proj(li)] = &L.proj;
    out[ids.up(li)] = &L.up;
    out[ids.down(li)] = &L.down;
    for (size_t h = 0; h < L.heads.size(); ++h)
      for (Role r : kAllRoles) out[ids.head(li, static_cast<int64_t>(h), r)] = &L.heads[h].lin(r);
  }
  out[ids.lm_head()] = &m.lm_head;
  return out;
}

std::vector<std::pair<const TensorView*, const TensorView*>> norms_by_id(const Model& m) {
  const WeightIds ids(m.config);
  std::vector<std::pair<const TensorView*, const TensorView*>> out(static_cast<size_t>(ids.norms()));
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const Layer& L = m.layers[l];
    out[ids.ln1(static_cast<int64_t>(l))] = {L.ln1_w, L.ln1_b};
    out[ids.ln2(static_cast<int64_t>(l))] = {L.ln2_w, L.ln2_b};
  }
  out[ids.lnf()] = {m.lnf_w, m.lnf_b};
  return out;
}

void Ops::attention_transposed(int64_t, Buf, Buf) {
  fail(QISA_ERR_UNSUPPORTED, "this backend cannot run the research code's transposed attention");
}

void run_forward(const Model& m, Ops& ops, int64_t R, const ProbePoint* probe) {
  auto at = [&](qisa_probe what, int64_t layer, Buf b) {
    if (probe && probe->what == what && probe->layer == layer) ops.download(b, probe->out, R);
  };
  const ModelConfig& c = m.config;
  const WeightIds ids(c);
  const int64_t hs = c.head_size();
  const bool pre = c.ln_placement == QISA_LN_PRE;
  const Act act = c.activation == QISA_ACTIVATION_RELU ? Act::Relu : Act::Gelu;
  constexpr Buf kRoleBuf[kRoles] = {Buf::Q, Buf::K, Buf::V};
  ops.embed(Buf::X);
  for (int64_t l = 0; l < static_cast<int64_t>(m.layers.size()); ++l) {
    const Layer& L = m.layers[static_cast<size_t>(l)];
    at(QISA_PROBE_LAYER_INPUT, l, Buf::X);
    Buf u = Buf::X;
    if (pre) {
      ops.layernorm(Buf::U, Buf::X, ids.ln1(l), R);
      u = Buf::U;
    }
    // q, k, v of every head: quantum projections of the layer at once, then
    // the linear ones into their head's columns.
    bool quantum = false;
    for (const Head& h : L.heads) quantum = quantum || attention_kind(h.kind).any_quantum();
    if (quantum) ops.quantum(l, u);
    for (int64_t h = 0; h < c.n_head; ++h) {
      const AttentionKind& kind = attention_kind(L.heads[static_cast<size_t>(h)].kind);
      for (Role r : kAllRoles) {
        if (kind.of(r) == Source::Linear)
          ops.linear(ids.head(l, h, r), u, kRoleBuf[static_cast<int>(r)], h * hs, Act::None, R);
      }
    }
    at(QISA_PROBE_QUERIES, l, Buf::Q);
    at(QISA_PROBE_KEYS, l, Buf::K);
    ops.kv_write(l, Buf::K, Buf::V);
    if (c.reference_transposed)
      ops.attention_transposed(l, Buf::Q, Buf::Att);
    else
      ops.attention(l, Buf::Q, Buf::Att);
    ops.linear(ids.proj(l), Buf::Att, Buf::Tmp, 0, Act::None, R);
    if (pre) {  // x += attn(LN1(x)); x += mlp(LN2(x))
      ops.add(Buf::X, Buf::X, Buf::Tmp);
      ops.layernorm(Buf::U, Buf::X, ids.ln2(l), R);
      ops.linear(ids.up(l), Buf::U, Buf::Hidden, 0, act, R);
      ops.linear(ids.down(l), Buf::Hidden, Buf::Tmp, 0, Act::None, R);
      ops.add(Buf::X, Buf::X, Buf::Tmp);
    } else {  // post-LN (GPT-1): x = LN1(x + attn(x)); x = LN2(x + mlp(x))
      ops.add(Buf::U, Buf::X, Buf::Tmp);
      ops.layernorm(Buf::X, Buf::U, ids.ln1(l), R);
      ops.linear(ids.up(l), Buf::X, Buf::Hidden, 0, act, R);
      ops.linear(ids.down(l), Buf::Hidden, Buf::Tmp, 0, Act::None, R);
      ops.add(Buf::U, Buf::X, Buf::Tmp);
      ops.layernorm(Buf::X, Buf::U, ids.ln2(l), R);
    }
  }
  at(QISA_PROBE_LAYER_INPUT, static_cast<int64_t>(m.layers.size()), Buf::X);
  if (probe) return;  // a probing pass brings back no logits
  // The final LayerNorm and the LM head only for the rows that want logits,
  // gathered so that they share one product.
  const int64_t n = ops.gather_logits(Buf::Tmp, Buf::X);
  if (n == 0) return;
  ops.layernorm(Buf::U, Buf::Tmp, ids.lnf(), n);
  ops.lm_head(Buf::U, n);
}

}  // namespace qisa
