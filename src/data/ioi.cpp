// IOI prompt generator. Prompts are built as text and encoded whole (the ids a model would see
// for that text), then checked: each name must be exactly one token in place, otherwise
// clean and corrupted would not line up position by position.
#include "data/ioi.h"

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <optional>
#include <tuple>
#include <random>

#include "core/error.h"
#include "core/random.h"
#include "model/tokenizer.h"

namespace causeway {

namespace {

// Adapted from Wang et al. 2022's templates (github.com/redwoodresearch/Easy-Transformer,
// ioi_dataset.py): written in ABBA order and cut before the final IO.
constexpr auto kTemplates = std::to_array<std::string_view>({
    "When [A] and [B] went to the [PLACE], [B] gave a [OBJECT] to",
    "When [A] and [B] got a [OBJECT] at the [PLACE], [B] decided to give it to",
    "When [A] and [B] got a [OBJECT] at the [PLACE], [B] decided to give the [OBJECT] to",
    "Then, [A] and [B] went to the [PLACE]. [B] gave a [OBJECT] to",
    "Then, [A] and [B] had a lot of fun at the [PLACE]. [B] gave a [OBJECT] to",
    "Then, [A] and [B] were working at the [PLACE]. [B] decided to give a [OBJECT] to",
    "Then, [A] and [B] were thinking about going to the [PLACE]. [B] wanted to give a [OBJECT] to",
    "Then, [A] and [B] had a long argument, and afterwards [B] said to",
    "Then, [A] and [B] had a long argument. Afterwards [B] said to",
    "After [A] and [B] went to the [PLACE], [B] gave a [OBJECT] to",
    "While [A] and [B] were working at the [PLACE], [B] gave a [OBJECT] to",
    "While [A] and [B] were commuting to the [PLACE], [B] gave a [OBJECT] to",
    "After the lunch, [A] and [B] went to the [PLACE]. [B] gave a [OBJECT] to",
    "Afterwards, [A] and [B] went to the [PLACE]. [B] gave a [OBJECT] to",
    "Friends [A] and [B] found a [OBJECT] at the [PLACE]. [B] gave it to",
});

// Common English first names (mostly the list of Wang et al.).
constexpr auto kNames = std::to_array<std::string_view>({
    "Michael",   "Christopher", "Jessica",  "Matthew",   "Ashley",    "Jennifer",  "Joshua",
    "Amanda",    "Daniel",      "David",    "James",     "Robert",    "John",      "Joseph",
    "Andrew",    "Ryan",        "Brandon",  "Jason",     "Justin",    "Sarah",     "William",
    "Jonathan",  "Stephanie",   "Brian",    "Nicole",    "Nicholas",  "Anthony",   "Heather",
    "Eric",      "Elizabeth",   "Adam",     "Megan",     "Melissa",   "Kevin",     "Steven",
    "Thomas",    "Timothy",     "Christina", "Kyle",     "Rachel",    "Laura",     "Lauren",
    "Amber",     "Brittany",    "Danielle", "Richard",   "Kimberly",  "Jeffrey",   "Amy",
    "Crystal",   "Michelle",    "Tiffany",  "Jeremy",    "Benjamin",  "Mark",      "Emily",
    "Aaron",     "Charles",     "Rebecca",  "Jacob",     "Stephen",   "Patrick",   "Sean",
    "Erin",      "Jamie",       "Kelly",    "Samantha",  "Nathan",    "Sara",      "Dustin",
    "Paul",      "Angela",      "Tyler",    "Scott",     "Katherine", "Andrea",    "Gregory",
    "Erica",     "Mary",        "Travis",   "Lisa",      "Kenneth",   "Bryan",     "Lindsey",
    "Kristen",   "Jose",        "Alexander", "Jesse",    "Katie",     "Lindsay",   "Shannon",
    "Vanessa",   "Courtney",    "Christine", "Alicia",   "Cody",      "Allison",   "Bradley",
    "Samuel",    "Carol"});

constexpr auto kPlaces = std::to_array<std::string_view>({
    "store",  "garden", "restaurant", "school", "hospital", "office", "house",  "station",
    "park",   "library", "beach",     "market", "museum",   "church", "airport", "zoo"});

// Consonant-initial, since the templates say "a [OBJECT]".
constexpr auto kObjects = std::to_array<std::string_view>({
    "ring", "kiss", "bone", "basketball", "computer", "necklace", "drink", "snack",
    "book", "letter", "gift", "cake",     "ball",     "pen",      "hat",   "card"});

constexpr auto kPositionNames = std::to_array<std::string_view>({"IO", "S1", "S1+1", "S2", "END"});

constexpr std::string_view kTokenizerName = "tokenizer";

// A word the tokenizer encodes as the single token " word".
struct Word {
  std::string text;  // with the leading space
  int32_t id;
};

// " " + word, built by appending: GCC 12 warns falsely (-Wrestrict) on " " + std::string.
std::string spaced(std::string_view word) {
  std::string s(1, ' ');
  s += word;
  return s;
}

std::vector<Word> single_tokens(const Tokenizer& tok, std::span<const std::string_view> words) {
  std::vector<Word> out;
  for (std::string_view w : words) {
    const std::string text = spaced(w);
    if (std::optional<int32_t> id = tok.token_id(text)) out.push_back({text, *id});
  }
  return out;
}

// Every word, single token or not (ids unused).
std::vector<Word> all_words(std::span<const std::string_view> words) {
  std::vector<Word> out;
  for (std::string_view w : words) out.push_back({spaced(w), -1});
  return out;
}

// Uniform in [0, n) excluding the (distinct) values in `skip`.
uint64_t below_except(std::mt19937_64& rng, uint64_t n, std::vector<uint64_t> skip) {
  uint64_t x = uniform_below(rng, n - skip.size());
  std::sort(skip.begin(), skip.end());
  for (uint64_t s : skip)
    if (x >= s) ++x;
  return x;
}

// The template with its name placeholders filled in order of appearance: names[0] for the
// first [A]/[B], names[1] for the second, names[2] (S2) for the third.
std::string fill(std::string_view tmpl, const std::array<const std::string*, 3>& names,
                 const std::string& place, const std::string& object) {
  std::string out;
  size_t slot = 0;
  while (!tmpl.empty()) {
    const size_t open = tmpl.find('[');
    if (open == std::string_view::npos) break;
    const size_t close = tmpl.find(']', open);
    out += tmpl.substr(0, open);
    // The placeholder follows a space that belongs to the " Word" token.
    if (!out.empty() && out.back() == ' ') out.pop_back();
    const std::string_view key = tmpl.substr(open + 1, close - open - 1);
    if (key == "A" || key == "B") out += *names[slot++];
    else if (key == "PLACE") out += place;
    else out += object;
    tmpl.remove_prefix(close + 1);
  }
  return out + std::string(tmpl);
}

// The words whose token count is the most common one (ties: the fewer tokens), so that the
// word drawn does not change a prompt's length.
std::vector<Word> of_one_length(const Tokenizer& tok, std::vector<Word> words) {
  std::map<size_t, int> count;
  std::vector<size_t> len;
  for (const Word& w : words) ++count[len.emplace_back(tok.encode(w.text).size())];
  size_t best = count.begin()->first;
  for (const auto& [n, c] : count)
    if (c > count[best]) best = n;
  std::vector<Word> out;
  for (size_t i = 0; i < words.size(); ++i)
    if (len[i] == best) out.push_back(words[i]);
  return out;
}

// The templates of the most common token length (ties: the shorter) and that length, measured
// with one draw of the words: names are one token, places and objects one length.
std::pair<std::vector<int>, size_t> templates_of_one_length(const Tokenizer& tok,
                                                            const std::vector<Word>& names,
                                                            const Word& place, const Word& object) {
  std::map<size_t, std::vector<int>> by_length;
  for (int t = 0; t < static_cast<int>(kTemplates.size()); ++t) {
    const std::string text =
        fill(kTemplates[t], {&names[0].text, &names[1].text, &names[1].text}, place.text, object.text);
    by_length[tok.encode_for_model(text).size()].push_back(t);
  }
  auto best = by_length.begin();
  for (auto it = by_length.begin(); it != by_length.end(); ++it)
    if (it->second.size() > best->second.size()) best = it;
  return {best->second, best->first};
}

std::vector<int> positions_of(const std::vector<int32_t>& ids, int32_t id) {
  std::vector<int> pos;
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == id) pos.push_back(static_cast<int>(i));
  return pos;
}

}  // namespace

std::span<const std::string_view> ioi_templates() { return kTemplates; }
std::span<const std::string_view> ioi_names() { return kNames; }
std::span<const std::string_view> ioi_places() { return kPlaces; }
std::span<const std::string_view> ioi_objects() { return kObjects; }
std::span<const std::string_view> ioi_position_names() { return kPositionNames; }

std::vector<IoiPair> generate_ioi_detailed(const Tokenizer& tok, const IoiOptions& opt) {
  if (opt.n < 1) throw InputError("ioi", "n", "must be at least 1 (got " + std::to_string(opt.n) + ")");
  if (opt.template_index < -1 || opt.template_index >= static_cast<int>(kTemplates.size()))
    throw InputError("ioi", "template",
                     std::to_string(opt.template_index) + " is not a template index (0.." +
                         std::to_string(kTemplates.size() - 1) + ", or -1 for all)");
  const std::vector<Word> names = single_tokens(tok, kNames);
  if (names.size() < 3)
    throw InputError(std::string(kTokenizerName), "",
                     "only " + std::to_string(names.size()) + " of the " +
                         std::to_string(kNames.size()) +
                         " built-in IOI names (\" Mary\", \" John\", ...) are single tokens in "
                         "this vocabulary; the IOI generator needs at least 3");
  // Places and objects occur in clean and corrupted alike, so alignment does not need them to
  // be single tokens; preferring those only keeps all prompts of one template at one length.
  std::vector<Word> places = single_tokens(tok, kPlaces);
  if (places.empty()) places = all_words(kPlaces);
  std::vector<Word> objects = single_tokens(tok, kObjects);
  if (objects.empty()) objects = all_words(kObjects);
  const bool one_length = opt.same_length && opt.template_index < 0;
  std::vector<int> templates;
  size_t length = 0;
  if (one_length) {
    places = of_one_length(tok, std::move(places));
    objects = of_one_length(tok, std::move(objects));
    std::tie(templates, length) = templates_of_one_length(tok, names, places[0], objects[0]);
  }

  std::mt19937_64 rng(opt.seed);
  // Exactly half ABBA (the odd one out BABA), in shuffled order.
  std::vector<char> abba(opt.n, 0);
  std::fill(abba.begin(), abba.begin() + opt.n / 2, 1);
  for (size_t i = abba.size(); i > 1; --i) std::swap(abba[i - 1], abba[uniform_below(rng, i)]);

  const bool swap = opt.corruption == IoiOptions::Corruption::SubjectSwap;
  std::vector<IoiPair> out;
  out.reserve(opt.n);
  for (int i = 0; i < opt.n; ++i) {
    IoiPair r;
    r.abba = abba[i] != 0;
    r.template_index = opt.template_index >= 0 ? opt.template_index
                       : one_length ? templates[uniform_below(rng, templates.size())]
                                    : static_cast<int>(uniform_below(rng, kTemplates.size()));
    // C is drawn for both kinds so that the clean prompts do not depend on the corruption.
    const uint64_t io = uniform_below(rng, names.size());
    const uint64_t s = below_except(rng, names.size(), {io});
    const uint64_t c = below_except(rng, names.size(), {io, s});
    const Word& place = places[uniform_below(rng, places.size())];
    const Word& object = objects[uniform_below(rng, objects.size())];
    const Word& IO = names[io];
    const Word& S = names[s];
    const Word& C = names[c];
    const Word& S2 = swap ? IO : C;
    r.io = IO.text;
    r.s = S.text;
    if (!swap) r.c = C.text;

    const std::string_view tmpl = kTemplates[r.template_index];
    const std::string* first = r.abba ? &IO.text : &S.text;
    const std::string* second = r.abba ? &S.text : &IO.text;
    PromptPair& p = r.pair;
    p.clean_text = fill(tmpl, {first, second, &S.text}, place.text, object.text);
    p.corrupted_text = fill(tmpl, {first, second, &S2.text}, place.text, object.text);
    p.clean = tok.encode_for_model(p.clean_text);  // BOS first when the tokenizer prepends it
    p.corrupted = tok.encode_for_model(p.corrupted_text);
    p.answers = {IO.id};
    p.wrongs = {S.id};

    // Each name must be one token in context too (a tokenizer without GPT-2's split of words
    // from their neighbours could merge it), or the pair would not align.
    const std::vector<int> s_pos = positions_of(p.clean, S.id);
    const std::vector<int> io_pos = positions_of(p.clean, IO.id);
    bool ok = s_pos.size() == 2 && io_pos.size() == 1 && p.clean.size() == p.corrupted.size();
    if (ok) {
      r.s1_pos = s_pos[0];
      r.s2_pos = s_pos[1];
      r.io_pos = io_pos[0];
      for (size_t t = 0; t < p.clean.size(); ++t)
        ok = ok && (p.corrupted[t] == (static_cast<int>(t) == r.s2_pos ? S2.id : p.clean[t]));
    }
    if (!ok)
      throw InputError(std::string(kTokenizerName), "",
                       "the IOI prompt \"" + p.clean_text + "\" does not encode with" + IO.text +
                           " and" + S.text + " as single tokens in place, so clean and " +
                           "corrupted prompts would not align");
    if (one_length && p.clean.size() != length)
      throw InputError(std::string(kTokenizerName), "",
                       "the IOI prompt \"" + p.clean_text + "\" has " + std::to_string(p.clean.size()) +
                           " tokens, not the " + std::to_string(length) +
                           " of its template family, so positions would not line up; set "
                           "same_length = false and use named positions");
    const int at[] = {r.io_pos, r.s1_pos, r.s1_pos + 1, r.s2_pos, static_cast<int>(p.clean.size()) - 1};
    for (size_t k = 0; k < kPositionNames.size(); ++k)
      p.positions.push_back({std::string(kPositionNames[k]), at[k]});
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<PromptPair> generate_ioi(const Tokenizer& tok, const IoiOptions& opt) {
  std::vector<IoiPair> detailed = generate_ioi_detailed(tok, opt);
  std::vector<PromptPair> pairs;
  pairs.reserve(detailed.size());
  for (IoiPair& d : detailed) pairs.push_back(std::move(d.pair));
  return pairs;
}

}  // namespace causeway
