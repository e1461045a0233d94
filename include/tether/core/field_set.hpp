#pragma once

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether {

/// @brief A set of an entity's field names (as Hana or the JSON object spells
/// them), e.g. the fields a record changed since its last sync.
///
/// Behaves like a `std::set<std::string>` that iterates in name order, with
/// one difference that matters on the write path: the names are immutable and
/// shared by copies (a change builds a new list), so copying a record does not
/// copy its dirty fields. Copies may be used from different threads; one
/// `field_set` object, like any standard container, must not be written while
/// another thread uses it.
///
/// @code
/// tether::field_set dirty{"title"};
/// dirty.insert("progress");
/// assert(dirty.contains("title") && dirty.size() == 2);
/// for (std::string_view name : dirty) std::cout << name << '\n';  // progress, title
/// @endcode
class field_set {
    using names = std::vector<std::string>;

public:
    using value_type = std::string;                   ///< a field name
    using size_type = std::size_t;                    ///< a count of names
    using const_iterator = names::const_iterator;     ///< iterates names in order
    using iterator = const_iterator;                  ///< names are never changed in place

    /// @brief The empty set (no allocation).
    field_set() noexcept = default;

    /// @brief The set of the given names (duplicates count once).
    field_set(std::initializer_list<std::string_view> names_in) {
        for (auto n : names_in) insert(n);
    }

    /// @brief The set of the names in `[first, last)` (anything convertible to `std::string_view`).
    template <class It>
    field_set(It first, It last) {
        for (; first != last; ++first) insert(std::string_view{*first});
    }

    /// @brief True if no name is in the set.
    [[nodiscard]] bool empty() const noexcept { return !names_ || names_->empty(); }
    /// @brief How many names are in the set.
    [[nodiscard]] size_type size() const noexcept { return names_ ? names_->size() : 0; }

    /// @brief True if `name` is in the set.
    [[nodiscard]] bool contains(std::string_view name) const noexcept {
        if (!names_) return false;
        const auto it = lower_bound_(name);
        return it != names_->end() && std::string_view{*it} == name;
    }
    /// @brief 1 if `name` is in the set, else 0.
    [[nodiscard]] size_type count(std::string_view name) const noexcept { return contains(name) ? 1 : 0; }

    /// @brief Adds `name`; true if it was not there already. Costs nothing
    /// (no allocation, no copy of shared names) when it was.
    bool insert(std::string_view name) {
        if (names_) {
            const auto it = lower_bound_(name);
            if (it != names_->end() && std::string_view{*it} == name) return false;
            auto next = std::make_shared<names>();
            next->reserve(names_->size() + 1);
            next->insert(next->end(), names_->cbegin(), it);
            next->emplace_back(name);
            next->insert(next->end(), it, names_->cend());
            names_ = std::move(next);
            return true;
        }
        names_ = std::make_shared<const names>(names{std::string{name}});
        return true;
    }
    /// @brief Same as `insert(name)`.
    bool emplace(std::string_view name) { return insert(name); }

    /// @brief Removes `name`; returns how many were removed (0 or 1).
    size_type erase(std::string_view name) {
        if (!contains(name)) return 0;
        if (names_->size() == 1) {
            names_.reset();
            return 1;
        }
        const auto it = lower_bound_(name);
        auto next = std::make_shared<names>();
        next->reserve(names_->size() - 1);
        next->insert(next->end(), names_->cbegin(), it);
        next->insert(next->end(), it + 1, names_->cend());
        names_ = std::move(next);
        return 1;
    }

    /// @brief Removes every name.
    void clear() noexcept { names_.reset(); }

    /// @brief The first name (in order).
    [[nodiscard]] const_iterator begin() const noexcept { return names_ ? names_->cbegin() : empty_().cbegin(); }
    /// @brief Past the last name.
    [[nodiscard]] const_iterator end() const noexcept { return names_ ? names_->cend() : empty_().cend(); }
    /// @brief Same as `begin()`.
    [[nodiscard]] const_iterator cbegin() const noexcept { return begin(); }
    /// @brief Same as `end()`.
    [[nodiscard]] const_iterator cend() const noexcept { return end(); }

    /// @brief True if both sets hold the same names.
    friend bool operator==(const field_set& a, const field_set& b) noexcept {
        if (a.names_ == b.names_) return true;
        return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
    }

    /// @brief Writes `{a, b}`.
    friend std::ostream& operator<<(std::ostream& os, const field_set& s) {
        os << '{';
        const char* sep = "";
        for (const auto& n : s) {
            os << sep << n;
            sep = ", ";
        }
        return os << '}';
    }

private:
    [[nodiscard]] names::const_iterator lower_bound_(std::string_view name) const noexcept {
        return std::lower_bound(names_->cbegin(), names_->cend(), name,
                                [](const std::string& a, std::string_view b) { return std::string_view{a} < b; });
    }

    static const names& empty_() noexcept {
        static const names none;
        return none;
    }

    std::shared_ptr<const names> names_;  // null when empty; never changed once built, shared by copies
};

}  // namespace tether
