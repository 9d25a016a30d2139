// Private to src/http: the machinery shared by RequestParser and ResponseParser.
//
// llhttp 8.1 (built in loose mode) accepts several things a proxy must refuse: obs-fold lines,
// "Name : value", chunk data not followed by CRLF, a bare CR or LF in chunk and trailer lines,
// HTTP/0.9 and HTTP/2.0 start lines, RTSP/ICE protocols. FrameScanner therefore checks the raw
// bytes of every message *before* llhttp sees them: the head and trailer sections (strict CRLF,
// token header names, no control characters, no obs-fold, size limit) and the chunked framing
// (hex sizes, bounded extensions, CRLF after data). It only scans up to the next framing boundary
// (end of head, end of a chunked body), so llhttp never runs past bytes the scanner has not seen.
// Content-Length and close-delimited bodies are opaque to it: llhttp frames those alone.
// A request's method never reaches llhttp (whose fixed method list refuses tokens a proxy must pass
// on): the scanner checks it is a token, H1Core keeps it in method_ and feeds llhttp a stand-in.
#pragma once

#include "gripd/http/headers.hpp"

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gripd::http::detail {

// RFC 9110 §5.6.2 tchar.
bool is_tchar(unsigned char c);

class FrameScanner {
  public:
    enum class Kind : uint8_t { Request, Response };
    // MethodEnd (requests): the bytes up to here are leading empty lines and the method with its SP.
    enum class Event : uint8_t { None, HeadEnd, MessageEnd, MethodEnd, Error };
    struct Result {
        size_t used; // bytes that passed; on Error the offending byte is data[used]
        Event event; // HeadEnd / MessageEnd: the boundary is right after the `used` bytes
    };

    // Longest chunk-size line (size + extensions) accepted.
    static constexpr size_t kMaxChunkLine = 4096;

    FrameScanner(Kind kind, size_t max_head_bytes);

    // Expect a new message (head scanning, leading empty lines allowed).
    void start_message();
    // After the head: a chunked body follows.
    void begin_chunked();
    // After the head: the body (Content-Length, until EOF, or none) is framed by llhttp alone.
    void begin_opaque();

    Result scan(const char* data, size_t len);
    // A request's leading empty lines or method: what H1Core keeps from llhttp (see H1Core::feed).
    bool in_method() const {
        return kind_ == Kind::Request &&
               (state_ == S::LeadStart || state_ == S::LeadLf || (state_ == S::StartLine && spaces_ == 0));
    }

    int error_status() const { return error_status_; }
    const char* error_message() const { return error_message_; }

  private:
    enum class S : uint8_t {
        LeadStart,
        LeadLf,
        StartLine,
        StartLineLf,
        FieldStart,
        FieldName,
        FieldValue,
        FieldValueLf,
        FinalLf,
        ChunkSizeStart,
        ChunkSize,
        ChunkExt,
        ChunkSizeLf,
        ChunkData,
        ChunkDataCr,
        ChunkDataLf,
        Opaque,
        Failed,
    };

    Result fail(size_t used, int status, const char* message);
    bool start_line_byte(unsigned char c);
    const char* section_error_status(int& status) const;
    // One byte of scan() in each part of a message; true to stop scanning with `out`.
    bool start_line_step(unsigned char c, size_t i, Result& out);
    bool field_step(unsigned char c, size_t i, Result& out);
    bool chunk_step(unsigned char c, size_t i, Result& out);
    bool fail_into(Result& out, size_t used, int status, const char* message);

    Kind kind_;
    S state_ = S::LeadStart;
    bool trailers_ = false;
    size_t max_head_;
    size_t head_bytes_ = 0; // bytes of the current head or trailer section
    // Start line checks.
    uint8_t spaces_ = 0;
    bool prev_space_ = false;
    size_t line_bytes_ = 0;
    size_t proto_pos_ = 0; // index into the HTTP-version part
    unsigned char major_ = 0;
    // Chunked framing.
    uint64_t chunk_left_ = 0;
    uint8_t chunk_digits_ = 0;
    int error_status_ = 0;
    const char* error_message_ = "";
};

// Runs llhttp behind a FrameScanner and turns its callbacks into a few hooks. The hooks return 0 to go
// on, HPE_PAUSED to stop after the callback, or the result of fail().
class H1Core {
  public:
    enum class State : uint8_t { Ok, Paused, Upgrade, Error };

    H1Core(FrameScanner::Kind kind, size_t max_head_bytes);
    virtual ~H1Core() = default;
    H1Core(const H1Core&) = delete;
    H1Core& operator=(const H1Core&) = delete;

    size_t feed(const char* data, size_t len);
    void resume();
    void pause();
    State state() const { return state_; }
    int error_status() const { return error_status_; }
    const char* error_message() const { return error_message_; }
    bool in_message() const { return in_message_; }
    void reset();

  protected:
    virtual int on_head() = 0;
    virtual int on_body(std::string_view data) = 0;
    virtual int on_complete() = 0;
    // Status to report for an llhttp error code.
    virtual int status_for(llhttp_errno_t err, const char* pos, const char* end) const = 0;
    // Called by resume() in the Upgrade state; returns true to continue parsing as HTTP/1.1.
    virtual bool decline_upgrade() = 0;

    // Records an error and returns the llhttp code that aborts parsing.
    int fail(int status, const char* message);
    // A hook stops after its callback when the handler called pause().
    int maybe_pause();
    // From on_complete(): the message ends as we decided. A keep-alive message leaves llhttp ready for
    // the next one (it would otherwise go by its own view, e.g. close after an HTTP/1.0 "100
    // Continue" or a "Connection: close" or "Transfer-Encoding" trailer, and discard what follows);
    // otherwise any further byte is an error.
    void end_message(bool keep_alive);
    // What the Transfer-Encoding header(s) say.
    enum class Te : uint8_t {
        None,        // absent
        Chunked,     // exactly "chunked"
        Invalid,     // empty, last coding not chunked, or chunked applied twice
        Unsupported, // chunked last, but other codings before it
    };
    Te transfer_encoding() const;
    // Content-Length from llhttp, or -1; false if it does not fit an int64_t.
    bool content_length(int64_t& out) const;

    llhttp_t parser_;
    Headers headers_;
    std::string start_text_; // request-target or reason phrase
    std::string method_;     // requests: the method as sent (llhttp is given a stand-in, see feed())
    State state_ = State::Ok;
    bool body_chunked_ = false; // set by on_head: the scanner must check chunked framing
    bool in_message_ = false;
    bool pause_requested_ = false;
    // Set by on_complete() after a message that was not keep-alive: nothing may follow it (llhttp's
    // loose build would silently discard what does).
    bool closed_ = false;

  private:
    static int cb_message_begin(llhttp_t* p);
    static int cb_start_text(llhttp_t* p, const char* at, size_t len);
    static int cb_header_field(llhttp_t* p, const char* at, size_t len);
    static int cb_header_value(llhttp_t* p, const char* at, size_t len);
    static int cb_header_value_complete(llhttp_t* p);
    static int cb_headers_complete(llhttp_t* p);
    static int cb_body(llhttp_t* p, const char* at, size_t len);
    static int cb_message_complete(llhttp_t* p);
    static const llhttp_settings_t* settings();

    void init_llhttp();
    size_t execute(const char* data, size_t len);
    void take_method(const char* data, size_t len, bool ends);

    FrameScanner::Kind kind_;
    FrameScanner scanner_;
    std::string field_;
    std::string value_;
    bool head_done_ = false; // header callbacks after the head are trailers (dropped)
    bool saw_head_ = false;  // events of the current execute() call
    bool saw_complete_ = false;
    int error_status_ = 0;
    const char* error_message_ = "";
};

} // namespace gripd::http::detail
