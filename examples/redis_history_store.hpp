#pragma once
// redis_history_store: poem::user_history records kept in Redis (hiredis), updated with optimistic
// concurrency, for the example host examples/redis_host.cpp. Not part of the library: include/poem stays
// free of hiredis; a host copies or adapts this file.
//
// Key layout, per user U (the braces are a Redis Cluster hash tag: both keys of a user share a slot):
//   <prefix>{U}            hash  v = version (decimal, +1 on every write), h = user_history bytes
//   <prefix>{U}:r:<id>     string, the version that request <id> wrote; expires after marker_ttl_ms
//
// One update (update() below): read v and h in one script; decode h (absent: a fresh user; corrupt:
// a poem::error, reported, and the user starts afresh); let the caller rank, serve and record; write
// back with the compare-and-set script, which applies only when v is still what was read. On a
// conflict, read again and redo the caller's step, at most max_conflicts times. The request's marker
// makes the write idempotent: a write whose reply was lost (connection reset, server restart) and is
// retried finds its marker and reports the version it wrote instead of recording the request twice.
// Connection errors, a server still loading its AOF and a script cache emptied by a restart are retried
// (reconnecting, with backoff) until retry_seconds have passed; then update() throws poem::error.

#include <hiredis/hiredis.h>

#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <poem/core/error.hpp>
#include <poem/core/span.hpp>
#include <poem/serve/user_history.hpp>

namespace redis_store {

// Returns a table: {type} for a key that is not a hash (none: absent), else {type, v, h}.
inline const char* const read_script = R"lua(
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'hash' then return {t} end
return {t, redis.call('HGET', KEYS[1], 'v') or '', redis.call('HGET', KEYS[1], 'h') or ''}
)lua";

// KEYS[1] the history hash, KEYS[2] the request's marker; ARGV[1] the version token the caller read
// ('' absent, v for a hash, '!' .. type for a key of another type), ARGV[2] the new bytes, ARGV[3] the
// marker's TTL in ms. Returns {1, new version}, {0} on a conflict, {2, version} when this request's
// write is already in (its marker exists). A corrupt record of another type is deleted, then replaced.
inline const char* const cas_script = R"lua(
local done = redis.call('GET', KEYS[2])
if done then return {2, tonumber(done)} end
local t = redis.call('TYPE', KEYS[1]).ok
local v = ''
if t == 'hash' then v = redis.call('HGET', KEYS[1], 'v') or '' elseif t ~= 'none' then v = '!' .. t end
if v ~= ARGV[1] then return {0} end
if t ~= 'hash' then redis.call('DEL', KEYS[1]) end
local n = (tonumber(v) or 0) + 1
redis.call('HSET', KEYS[1], 'v', n, 'h', ARGV[2])
redis.call('SET', KEYS[2], n, 'PX', ARGV[3])
return {1, n}
)lua";

struct store_config {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string prefix = "poem:u:";
    double io_timeout_s = 2.0;       // one command; a server that stops answering is a connection error
    double retry_seconds = 15.0;     // how long connection errors are retried before giving up
    unsigned max_conflicts = 64;     // compare-and-set conflicts of one update before giving up
    std::uint64_t marker_ttl_ms = 600000;  // longer than any retry of the request, anywhere
};

// Per store (one per thread); summed by the host.
struct store_stats {
    std::uint64_t updates = 0, conflicts = 0, reconnects = 0, transient_errors = 0, script_reloads = 0;
    std::uint64_t corrupt_seen = 0;       // reads whose bytes did not decode
    std::uint64_t corrupt_recovered = 0;  // corrupt records replaced by a fresh user's history
    std::uint64_t replayed_writes = 0;    // retried writes that found their marker (reply lost before)

    store_stats& operator+=(const store_stats& o) {
        updates += o.updates, conflicts += o.conflicts, reconnects += o.reconnects;
        transient_errors += o.transient_errors, script_reloads += o.script_reloads;
        corrupt_seen += o.corrupt_seen, corrupt_recovered += o.corrupt_recovered;
        replayed_writes += o.replayed_writes;
        return *this;
    }
};

// What one key holds, as read.
struct stored_record {
    std::string type;     // Redis type: "none" when absent
    std::string version;  // the CAS token (see cas_script)
    std::string bytes;    // h, when a hash
};

// A decoded history, or why the bytes are not one.
struct decoded {
    poem::user_history history;
    bool corrupt = false;
    std::string problem;
};

// Decodes a record of `user_id`; absent is a fresh user (make_fresh), anything that is not a valid
// history of this user is `corrupt` with the poem::error message.
template <class MakeFresh>
decoded decode_record(const stored_record& r, std::uint64_t user_id, MakeFresh&& make_fresh) {
    decoded d;
    if (r.type == "none") {
        d.history = make_fresh(user_id);
        return d;
    }
    try {
        poem::check(r.type == "hash", "redis_history_store: the key of user ", user_id, " holds a Redis ", r.type,
                    ", not a hash");
        d.history = poem::user_history::deserialize(poem::span<const std::uint8_t>(
            reinterpret_cast<const std::uint8_t*>(r.bytes.data()), r.bytes.size()));
        poem::check(d.history.user_id == user_id, "redis_history_store: the key of user ", user_id,
                    " holds the history of user ", d.history.user_id);
    } catch (const poem::error& e) {
        d.corrupt = true;
        d.problem = e.what();
        d.history = make_fresh(user_id);  // the documented recovery: the user starts afresh
    }
    return d;
}

class redis_history_store {
public:
    explicit redis_history_store(store_config cfg) : cfg_(std::move(cfg)) {
        poem::check(cfg_.port > 0 && cfg_.port < 65536, "redis_history_store: port ", cfg_.port, " is not 1..65535");
        poem::check(cfg_.io_timeout_s > 0 && cfg_.retry_seconds >= 0 && cfg_.max_conflicts >= 1,
                    "redis_history_store: io_timeout_s must be > 0, retry_seconds >= 0, max_conflicts >= 1");
    }
    redis_history_store(const redis_history_store&) = delete;
    redis_history_store& operator=(const redis_history_store&) = delete;

    const store_stats& stats() const noexcept { return stats_; }
    const store_config& config() const noexcept { return cfg_; }

    std::string key(std::uint64_t user_id) const { return cfg_.prefix + "{" + std::to_string(user_id) + "}"; }
    std::string marker_key(std::uint64_t user_id, const std::string& request_id) const {
        return key(user_id) + ":r:" + request_id;
    }

    stored_record read(std::uint64_t user_id) {
        const std::string k = key(user_id);
        const reply_ptr r = eval(read_sha_, read_script, {k});
        stored_record out;
        poem::check(r->type == REDIS_REPLY_ARRAY && (r->elements == 1 || r->elements == 3),
                    "redis_history_store: unexpected reply to the read script for ", k);
        for (std::size_t i = 0; i < r->elements; ++i)
            poem::check(r->element[i]->type == REDIS_REPLY_STRING || r->element[i]->type == REDIS_REPLY_STATUS,
                        "redis_history_store: unexpected element in the reply to the read script for ", k);
        out.type.assign(r->element[0]->str, r->element[0]->len);
        if (r->elements == 3) {
            out.version.assign(r->element[1]->str, r->element[1]->len);
            out.bytes.assign(r->element[2]->str, r->element[2]->len);
        } else if (out.type != "none") {
            out.version = "!" + out.type;
        }
        return out;
    }

    enum class cas_status { applied, conflict, already_applied };
    struct cas_result {
        cas_status status = cas_status::conflict;
        std::uint64_t version = 0;  // the version written (applied, already_applied)
    };

    cas_result compare_and_set(std::uint64_t user_id, const std::string& expected,
                               const std::vector<std::uint8_t>& bytes, const std::string& request_id) {
        const std::string k = key(user_id), m = marker_key(user_id, request_id);
        const std::string value(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        const reply_ptr r = eval(cas_sha_, cas_script, {k, m}, {expected, value, std::to_string(cfg_.marker_ttl_ms)});
        poem::check(r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_INTEGER,
                    "redis_history_store: unexpected reply to the compare-and-set script for ", k);
        cas_result out;
        const long long code = r->element[0]->integer;
        if (code == 0) return out;
        poem::check((code == 1 || code == 2) && r->elements == 2 && r->element[1]->type == REDIS_REPLY_INTEGER &&
                        r->element[1]->integer > 0,
                    "redis_history_store: unexpected reply to the compare-and-set script for ", k);
        out.status = code == 1 ? cas_status::applied : cas_status::already_applied;
        out.version = static_cast<std::uint64_t>(r->element[1]->integer);
        return out;
    }

    // The version request `request_id` wrote, or 0 when its marker is absent (never applied, or expired).
    std::uint64_t marker_version(std::uint64_t user_id, const std::string& request_id) {
        const std::string m = marker_key(user_id, request_id);
        const reply_ptr r = command({"GET", m});
        if (r->type == REDIS_REPLY_NIL) return 0;
        poem::check(r->type == REDIS_REPLY_STRING, "redis_history_store: unexpected reply to GET ", m);
        return parse_u64(std::string(r->str, r->len), m.c_str());
    }

    struct update_result {
        std::uint64_t version = 0;  // the version this request's write made
        unsigned attempts = 0;      // reads (1 + conflicts)
        bool recovered = false;     // this write replaced a corrupt record
        std::string problem;        // the last corrupt record's poem::error message
    };

    // The read-modify-write of one request of `user_id`: `step(history, attempt)` ranks, serves (on
    // attempt 0) and records into `history`; it is run again on the newly read history after a conflict.
    // `make_fresh(user_id)` builds a new user's history. Throws poem::error when the conflicts or the
    // connection retries run out: the request is then not acknowledged (its marker says whether its
    // write went in after all).
    template <class MakeFresh, class Step>
    update_result update(std::uint64_t user_id, const std::string& request_id, MakeFresh&& make_fresh, Step&& step) {
        update_result res;
        for (unsigned attempt = 0;; ++attempt) {
            const stored_record rec = read(user_id);
            decoded d = decode_record(rec, user_id, make_fresh);
            if (d.corrupt) {
                ++stats_.corrupt_seen;
                res.problem = d.problem;
            }
            res.attempts = attempt + 1;
            step(d.history, attempt);
            d.history.serialize(bytes_);
            const cas_result c = compare_and_set(user_id, rec.version, bytes_, request_id);
            if (c.status != cas_status::conflict) {
                ++stats_.updates;
                if (c.status == cas_status::already_applied) ++stats_.replayed_writes;
                // A recovery is the write that replaced the corrupt bytes with this fresh history.
                res.recovered = d.corrupt && c.status == cas_status::applied;
                if (res.recovered) ++stats_.corrupt_recovered;
                res.version = c.version;
                return res;
            }
            ++stats_.conflicts;
            poem::check(attempt + 1 < cfg_.max_conflicts, "redis_history_store: user ", user_id, ": ",
                        cfg_.max_conflicts, " compare-and-set conflicts in a row; request ", request_id,
                        " not recorded");
            backoff(attempt);
        }
    }

    ~redis_history_store() { disconnect(); }

private:
    struct reply_free {
        void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
    };
    using reply_ptr = std::unique_ptr<redisReply, reply_free>;

    static std::uint64_t parse_u64(const std::string& s, const char* what) {
        char* end = nullptr;
        errno = 0;
        const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
        poem::check(!s.empty() && s[0] != '-' && end == s.c_str() + s.size() && errno == 0, "redis_history_store: ",
                    what, " = '", poem::detail::clip(s), "' is not a version number");
        return v;
    }

    static timeval to_timeval(double s) {
        timeval tv{};
        tv.tv_sec = static_cast<decltype(tv.tv_sec)>(s);
        tv.tv_usec = static_cast<decltype(tv.tv_usec)>((s - double(tv.tv_sec)) * 1e6);
        return tv;
    }

    void disconnect() noexcept {
        if (ctx_ != nullptr) redisFree(ctx_);
        ctx_ = nullptr;
    }

    // True when connected; false (context dropped) when the server cannot be reached now.
    bool connect() {
        if (ctx_ != nullptr) return true;
        ctx_ = redisConnectWithTimeout(cfg_.host.c_str(), cfg_.port, to_timeval(cfg_.io_timeout_s));
        poem::check(ctx_ != nullptr, "redis_history_store: out of memory for a hiredis context");
        if (ctx_->err != 0 || redisSetTimeout(ctx_, to_timeval(cfg_.io_timeout_s)) != REDIS_OK) {
            last_error_ = ctx_->errstr;
            disconnect();
            return false;
        }
        return true;
    }

    // Jittered exponential backoff: 0.1 ms doubling to 100 ms, so colliding writers drift apart.
    void backoff(unsigned attempt) {
        jitter_ = jitter_ * 6364136223846793005ull + 1442695040888963407ull;
        const std::uint64_t cap_us = std::min<std::uint64_t>(100000, std::uint64_t(100) << std::min(attempt, 10u));
        std::this_thread::sleep_for(std::chrono::microseconds(cap_us / 2 + (jitter_ >> 33) % (cap_us / 2 + 1)));
    }

    // Sends one command; retries what a restart or a network blip causes until retry_seconds have
    // passed. Returns any reply that is not such an error (the caller checks its shape); throws poem::error
    // for an error reply that retrying cannot fix.
    reply_ptr command(const std::vector<std::string>& args) {
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        for (const std::string& a : args) argv.push_back(a.data()), lens.push_back(a.size());
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(cfg_.retry_seconds);
        for (unsigned attempt = 0;; ++attempt) {
            if (connect()) {
                reply_ptr r(static_cast<redisReply*>(
                    redisCommandArgv(ctx_, int(argv.size()), argv.data(), lens.data())));
                if (r == nullptr) {  // I/O error: the context is unusable
                    last_error_ = ctx_->errstr;
                    disconnect();
                    ++stats_.reconnects;
                } else if (r->type == REDIS_REPLY_ERROR) {
                    const std::string msg(r->str, r->len);
                    // Transient: loading the AOF after a restart, a script too slow, a replica in transition.
                    if (msg.rfind("LOADING", 0) == 0 || msg.rfind("BUSY", 0) == 0 || msg.rfind("TRYAGAIN", 0) == 0 ||
                        msg.rfind("MASTERDOWN", 0) == 0) {
                        last_error_ = msg;
                        ++stats_.transient_errors;
                    } else {
                        return r;  // NOSCRIPT and the rest: the caller decides
                    }
                } else {
                    return r;
                }
            }
            poem::check(std::chrono::steady_clock::now() < deadline, "redis_history_store: Redis at ", cfg_.host, ":",
                        cfg_.port, " unreachable for ", cfg_.retry_seconds, " s: ", last_error_);
            backoff(attempt + 4);  // from 1.6 ms: a restart takes a while
        }
    }

    // EVALSHA, falling back to EVAL (which caches the script again) when the server has lost its script
    // cache, as it does on every restart.
    reply_ptr eval(std::string& sha, const char* script, const std::vector<std::string>& keys,
                   const std::vector<std::string>& args = {}) {
        std::vector<std::string> cmd{"EVALSHA", sha, std::to_string(keys.size())};
        cmd.insert(cmd.end(), keys.begin(), keys.end());
        cmd.insert(cmd.end(), args.begin(), args.end());
        if (sha.empty()) {
            const reply_ptr r = command({"SCRIPT", "LOAD", script});
            poem::check(r->type == REDIS_REPLY_STRING, "redis_history_store: SCRIPT LOAD failed: ",
                        r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : std::string("unexpected reply"));
            sha.assign(r->str, r->len);
            cmd[1] = sha;
        }
        reply_ptr r = command(cmd);
        if (r->type == REDIS_REPLY_ERROR && std::strncmp(r->str, "NOSCRIPT", 8) == 0) {
            ++stats_.script_reloads;
            cmd[0] = "EVAL";
            cmd[1] = script;
            r = command(cmd);
        }
        poem::check(r->type != REDIS_REPLY_ERROR, "redis_history_store: Redis error: ",
                    r->type == REDIS_REPLY_ERROR ? poem::detail::clip(std::string(r->str, r->len), 200) : "");
        return r;
    }

    store_config cfg_;
    redisContext* ctx_ = nullptr;
    std::string read_sha_, cas_sha_, last_error_;
    std::vector<std::uint8_t> bytes_;
    store_stats stats_;
    std::uint64_t jitter_ = 0x9e3779b97f4a7c15ull ^ reinterpret_cast<std::uintptr_t>(this);
};

}  // namespace redis_store
