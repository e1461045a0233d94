#pragma once

// The resident set of a client while it pulls: a transport that passes every
// call on to another one and, as the records pulled cross each multiple of a
// step, notes this process's VmHWM and VmRSS (pull_memory.cpp).
#include "processes.hpp"

#include <tether/transport/transport.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace tether_bench {

/// The resident set after `records` records came in.
struct rss_sample {
    std::size_t records = 0;
    double hwm_kb = 0;  ///< VmHWM: the peak so far
    double rss_kb = 0;  ///< VmRSS: now
};

/// Counts pulled records and samples /proc/self/status every `every` of them.
class rss_sampler {
public:
    explicit rss_sampler(std::size_t every) : every_(every == 0 ? 1 : every), next_(every_) {}

    /// `n` more records (or tombstones) came in.
    void received(std::size_t n) {
        seen_ += n;
        if (seen_ < next_) return;
        sample();
        next_ = (seen_ / every_ + 1) * every_;
    }

    /// Notes the figures now (e.g. before the first page).
    void sample() {
        samples_.push_back({seen_, static_cast<double>(self_status_kb("VmHWM:")),
                            static_cast<double>(self_status_kb("VmRSS:"))});
    }

    [[nodiscard]] const std::vector<rss_sample>& samples() const { return samples_; }

private:
    std::size_t every_;
    std::size_t next_;
    std::size_t seen_ = 0;
    std::vector<rss_sample> samples_;
};

/// `Inner` (a `tether::transport_policy`) with a `rss_sampler` told of every
/// page pulled. Copies share the sampler.
template <class Inner>
class sampling_transport {
public:
    using policy_kind = tether::transport_tag;

    sampling_transport(Inner inner, std::shared_ptr<rss_sampler> sampler)
        : inner_(std::move(inner)), sampler_(std::move(sampler)) {}

    tether::result<std::vector<tether::push_outcome>> push(std::string_view collection,
                                                           std::span<const tether::push_op> ops) {
        return inner_.push(collection, ops);
    }
    tether::result<tether::pull_page> pull(std::string_view collection, std::string_view cursor, std::size_t limit) {
        auto page = inner_.pull(collection, cursor, limit);
        if (page) sampler_->received(page->records.size() + page->tombstones.size());
        return page;
    }
    tether::result<tether::server_record> fetch(std::string_view collection, std::string_view server_id) {
        return inner_.fetch(collection, server_id);
    }
    [[nodiscard]] std::size_t max_batch() const { return inner_.max_batch(); }
    [[nodiscard]] bool has_change_feed() const { return inner_.has_change_feed(); }

private:
    Inner inner_;
    std::shared_ptr<rss_sampler> sampler_;
};

}  // namespace tether_bench
