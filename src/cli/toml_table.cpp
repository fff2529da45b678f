#include "cli/toml_table.h"

#include <climits>
#include <fstream>
#include <sstream>

namespace causeway {

std::string read_config_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path.string(), "", "cannot read the config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

toml::table parse_toml(const std::string& text, const std::string& file) {
  try {
    return toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << "line " << e.source().begin.line;
    throw InputError(file, where.str(), std::string(e.description()));
  }
}

const toml::table* table_of(const toml::table& root, const std::string& name,
                            const std::string& file, bool required) {
  const toml::node* n = root.get(name);
  if (!n) {
    if (required) throw InputError(file, "[" + name + "]", "table is required");
    return nullptr;
  }
  if (!n->as_table()) throw InputError(file, "[" + name + "]", "must be a table");
  return n->as_table();
}

std::string Table::require_string(const std::string& key) {
  auto v = get<std::string>(key);
  if (!v) fail(key, "is required");
  return *v;
}

std::vector<int> Table::int_list(const std::string& key) {
  std::vector<int> out;
  const toml::node* n = raw(key);
  if (!n) return out;
  const toml::array* a = n->as_array();
  if (!a) fail(key, "must be an array of integers");
  for (const toml::node& e : *a) {
    auto v = e.value_exact<int64_t>();
    if (!v) fail(key, "must be an array of integers");
    if (*v < INT_MIN || *v > INT_MAX)
      fail(key, std::to_string(*v) + " is out of range (" + std::to_string(INT_MIN) + ".." +
                    std::to_string(INT_MAX) + ")");
    out.push_back(static_cast<int>(*v));
  }
  return out;
}

int64_t Table::integer(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
  auto v = get<int64_t>(key);
  if (!v) return fallback;
  if (*v < lo || *v > hi)
    fail(key, std::to_string(*v) + " is out of range (" + std::to_string(lo) + ".." +
                  std::to_string(hi) + ")");
  return *v;
}

int64_t Table::required_integer(const std::string& key, int64_t lo, int64_t hi) {
  if (!(t_ && t_->get(key))) fail(key, "is required");
  return integer(key, 0, lo, hi);
}

double Table::number(const std::string& key, double fallback, double lo, double hi) {
  auto v = get<double>(key);
  if (!v) return fallback;
  if (!(*v >= lo && *v <= hi)) {
    std::ostringstream s;
    s << *v << " is out of range (" << lo << ".." << hi << ")";
    fail(key, s.str());
  }
  return *v;
}

std::string Table::choice(const std::string& key, const std::string& fallback,
                          const std::vector<std::string>& options) {
  std::string known;
  for (const std::string& o : options) known += (known.empty() ? "" : ", ") + o;
  const toml::node* n = raw(key);
  if (!n) return fallback;
  auto v = n->value_exact<std::string>();
  if (!v) fail(key, "must be a string (one of: " + known + ")");
  for (const std::string& o : options)
    if (*v == o) return *v;
  fail(key, "'" + *v + "' is not one of: " + known);
}

void Table::reject_unknown() const {
  if (!t_) return;
  for (const auto& [k, v] : *t_)
    if (!used_.count(std::string(k.str()))) fail(std::string(k.str()), "unknown key");
}

}  // namespace causeway
