// Helpers for the request/response parser tests: recording handlers and a driver that feeds pieces
// the way a connection would (keep unconsumed bytes, resume after each Paused).
#pragma once

#include "gripd/http/request_parser.hpp"
#include "gripd/http/response_parser.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace gripd::http::test {

struct RequestRecorder : RequestParser::Handler {
    std::vector<RequestHead> heads;
    std::vector<std::string> bodies;
    int completes = 0;
    int empty_body_calls = 0;
    RequestParser* pause_on_head = nullptr; // call pause() from on_request_head
    RequestParser* pause_on_body = nullptr; // call pause() from on_request_body
    void on_request_head(RequestHead& head) override {
        heads.push_back(std::move(head));
        bodies.emplace_back();
        if (pause_on_head != nullptr) pause_on_head->pause();
    }
    void on_request_body(std::string_view data) override {
        if (data.empty()) ++empty_body_calls;
        if (!bodies.empty()) bodies.back() += data;
        if (pause_on_body != nullptr) pause_on_body->pause();
    }
    void on_request_complete() override { ++completes; }
};

struct ResponseRecorder : ResponseParser::Handler {
    std::vector<ResponseHead> heads;
    std::vector<std::string> bodies;
    int completes = 0;
    int empty_body_calls = 0;
    void on_response_head(ResponseHead& head) override {
        heads.push_back(std::move(head));
        bodies.emplace_back();
    }
    void on_response_body(std::string_view data) override {
        if (data.empty()) ++empty_body_calls;
        if (!bodies.empty()) bodies.back() += data;
    }
    void on_response_complete() override { ++completes; }
};

// Feeds `pieces` in order, keeping unconsumed bytes like a read buffer and resuming after every
// Paused. Stops at Error or Upgrade, or when everything was fed and parsed (possibly still Paused);
// returns the unconsumed bytes.
template <class Parser> std::string drive(Parser& parser, std::vector<std::string_view> pieces) {
    std::erase_if(pieces, [](std::string_view p) { return p.empty(); });
    std::string buf;
    size_t next = 0;
    for (int guard = 0; guard < 1000000; ++guard) {
        if (parser.state() == Parser::State::Paused) {
            if (buf.empty() && next == pieces.size()) break; // leave the last Paused visible
            parser.resume();
        }
        if (parser.state() != Parser::State::Ok) break;
        size_t n = parser.feed(buf.data(), buf.size());
        buf.erase(0, n);
        if (parser.state() == Parser::State::Paused) continue;
        if (parser.state() != Parser::State::Ok) break;
        if (next == pieces.size()) break;
        buf.append(pieces[next++]);
    }
    for (; next < pieces.size(); ++next)
        buf.append(pieces[next]);
    return buf;
}

template <class Parser> std::string drive(Parser& parser, std::string_view input) {
    return drive(parser, std::vector<std::string_view>{input});
}

// Splits `input` into pieces of `step` bytes.
inline std::vector<std::string_view> pieces_of(std::string_view input, size_t step) {
    std::vector<std::string_view> out;
    for (size_t i = 0; i < input.size(); i += step)
        out.push_back(input.substr(i, step));
    return out;
}

} // namespace gripd::http::test
