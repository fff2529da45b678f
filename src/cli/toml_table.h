// Reading TOML configs (toml++) so that every error names the file, the table and the key:
// `run` and `train` configs share it.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"

namespace causeway {

// The file's text; InputError naming it when it cannot be read.
std::string read_config_text(const std::filesystem::path& path);
// Parsed TOML; a syntax error is an InputError naming the file and line.
toml::table parse_toml(const std::string& text, const std::string& file);
// Table `name` of `root`, or nullptr when absent and not `required`.
const toml::table* table_of(const toml::table& root, const std::string& name,
                            const std::string& file, bool required);

// Reads keys of one table (which may be absent), remembering which were used so unknown keys
// can be reported.
class Table {
 public:
  Table(const toml::table* t, std::string file, std::string where)
      : t_(t), file_(std::move(file)), where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& detail) const {
    throw InputError(file_, where_ + "." + key, detail);
  }
  const toml::node* raw(const std::string& key) {
    used_.insert(key);
    return t_ ? t_->get(key) : nullptr;
  }

  template <typename T>
  std::optional<T> get(const std::string& key) {
    const toml::node* n = raw(key);
    if (!n) return std::nullopt;
    if constexpr (std::is_same_v<T, std::string>) {
      if (auto v = n->value<std::string>()) return *v;
      fail(key, "must be a string");
    } else if constexpr (std::is_same_v<T, double>) {
      if (auto v = n->value<double>(); v && !n->is_boolean()) return *v;
      fail(key, "must be a number");
    } else {
      if (auto v = n->value_exact<int64_t>()) {
        // A value that does not fit T would otherwise be silently wrapped.
        if (*v < std::numeric_limits<T>::min() || *v > std::numeric_limits<T>::max())
          fail(key, std::to_string(*v) + " is out of range (" +
                        std::to_string(std::numeric_limits<T>::min()) + ".." +
                        std::to_string(std::numeric_limits<T>::max()) + ")");
        return static_cast<T>(*v);
      }
      fail(key, "must be an integer");
    }
  }
  template <typename T>
  T get_or(const std::string& key, T fallback) {
    auto v = get<T>(key);
    return v ? *v : fallback;
  }
  std::string require_string(const std::string& key);
  std::vector<int> int_list(const std::string& key);
  // Integers and numbers within [lo, hi], else an error saying the range.
  int64_t integer(const std::string& key, int64_t fallback, int64_t lo, int64_t hi);
  int64_t required_integer(const std::string& key, int64_t lo, int64_t hi);
  double number(const std::string& key, double fallback, double lo, double hi);
  // One of `options` (strings).
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& options);
  void reject_unknown() const;

 private:
  const toml::table* t_;
  std::string file_, where_;
  std::set<std::string> used_;
};

// One of a fixed set of names mapped to values; the error lists the names.
template <typename E>
E choose(Table& t, const std::string& key, const std::string& fallback,
         const std::vector<std::pair<std::string, E>>& options) {
  std::vector<std::string> names;
  for (const auto& o : options) names.push_back(o.first);
  const std::string v = t.choice(key, fallback, names);
  for (const auto& [name, e] : options)
    if (v == name) return e;
  t.fail(key, "unknown value");
}

}  // namespace causeway
