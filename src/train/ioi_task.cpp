#include "train/ioi_task.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "data/ioi.h"

namespace causeway::train {

namespace {

std::string spaced(std::string_view w) {
  std::string s(1, ' ');
  s += w;
  return s;
}

// A template with its placeholders (and the space before each) removed:
// "When [A] and [B] went to the [PLACE], ..." -> "When and went to the, ...".
std::string skeleton(std::string_view t) {
  std::string out;
  while (!t.empty()) {
    const size_t open = t.find('[');
    if (open == std::string_view::npos) break;
    out += t.substr(0, open);
    if (!out.empty() && out.back() == ' ') out.pop_back();
    t.remove_prefix(t.find(']', open) + 1);
  }
  return out + std::string(t);
}

}  // namespace

std::vector<std::string> ioi_vocabulary(const std::vector<std::string>& names) {
  const Tokenizer bytes = make_word_tokenizer({}).load();
  std::vector<std::string> words;
  std::set<std::string> seen;
  auto add = [&](const std::string& w) {
    if (seen.insert(w).second) words.push_back(w);
  };
  for (std::string_view t : ioi_templates())
    for (const std::string& piece : bytes.pretokenize(skeleton(t))) add(piece);
  for (std::string_view p : ioi_places()) add(spaced(p));
  for (std::string_view o : ioi_objects()) add(spaced(o));
  for (const std::string& n : names) add(spaced(n));
  return words;
}

namespace {
IoiTaskOptions with_defaults(IoiTaskOptions o) {
  if (o.names.empty())
    for (size_t i = 0; i < 40 && i < ioi_names().size(); ++i) o.names.emplace_back(ioi_names()[i]);
  std::set<std::string> seen;
  for (const std::string& n : o.names) {
    if (std::find(ioi_names().begin(), ioi_names().end(), n) == ioi_names().end())
      throw std::invalid_argument("'" + n + "' is not one of the IOI generator's names");
    if (!seen.insert(n).second) throw std::invalid_argument("'" + n + "' is given twice");
  }
  if (o.names.size() < 3) throw std::invalid_argument("at least 3 names are needed");
  return o;
}
}  // namespace

IoiTask::IoiTask(const IoiTaskOptions& o)
    : o_(with_defaults(o)), files_(make_word_tokenizer(ioi_vocabulary(o_.names))),
      tok_(files_.load()) {
  vocab_size_ = tok_.vocab_size();
  // Every template has one length once its words are single tokens.
  for (int t = 0; t < static_cast<int>(ioi_templates().size()); ++t) {
    IoiOptions io;
    io.n = 1;
    io.template_index = t;
    max_length_ = std::max(max_length_, static_cast<int>(generate_ioi(tok_, io)[0].clean.size()));
  }
}

TrainBatch IoiTask::batch(uint64_t seed, int n) const {
  IoiOptions io;
  io.n = n;
  io.seed = seed;
  io.same_length = false;  // training sees every template (and the committed models were trained so)
  const std::vector<IoiPair> pairs = generate_ioi_detailed(tok_, io);
  std::vector<std::vector<int32_t>> rows;
  for (const IoiPair& p : pairs) rows.push_back(p.pair.clean);
  TrainBatch b;
  b.tokens = TokenBatch::padded(rows, *tok_.eos_id());
  const int T = b.tokens.T;
  b.targets.assign(static_cast<size_t>(n) * T, -1);
  b.wrongs.assign(b.targets.size(), -1);
  for (int r = 0; r < n; ++r) {
    const size_t last = static_cast<size_t>(r) * T + b.tokens.lengths[r] - 1;
    b.targets[last] = pairs[r].pair.answers[0];
    b.wrongs[last] = pairs[r].pair.wrongs[0];
  }
  return b;
}

std::string IoiTask::describe() const {
  // The generator uses every built-in name that is one token, which includes prefixes of the
  // listed names that are names themselves (" Jose" on the way to " Joseph").
  std::string extra;
  int used = 0;
  for (std::string_view n : ioi_names()) {
    if (!tok_.token_id(spaced(n))) continue;
    ++used;
    if (std::find(o_.names.begin(), o_.names.end(), n) == o_.names.end())
      extra += (extra.empty() ? "" : ", ") + std::string(n);
  }
  return "ioi: " + std::to_string(used) + " names (" + std::to_string(o_.names.size()) +
         " listed" + (extra.empty() ? "" : "; " + extra + " as prefixes of listed names") + "), " +
         std::to_string(ioi_templates().size()) + " templates (ABBA and BABA), vocabulary of " +
         std::to_string(vocab_size_) + " tokens; loss on the indirect object";
}

}  // namespace causeway::train
