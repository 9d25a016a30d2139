// UnixSocketFile: the listening unix socket of one [runner] local_ports entry, with its file.
//
// A unix socket path can be bound once only (there is no SO_REUSEPORT for paths), so the main thread
// opens it before the workers start and each worker accepts on a dup() of the same socket. As in
// Pushpin, a stale socket file left by an earlier run is replaced and mode/user/group are applied to
// the new file. Unlike Pushpin, gripd never deletes anything but a socket (a regular file or a
// directory at the path is an error), nor a socket another process still listens on, and removes its
// own file when it stops (only if the path still names the socket it created).
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>

namespace gripd::net {

class UnixSocketFile {
  public:
    struct Options {
        std::string path;
        int mode = -1;     // chmod after bind; -1 = as created (umask)
        std::string user;  // chown to this user name; empty = unchanged
        std::string group; // chgrp to this group name; empty = unchanged
        // An upgrade: if a live process listens at `path`, bind beside it and take the path over in
        // install() (rename, atomic for connecting clients) instead of refusing to start.
        bool take_over = false;
    };

    // Binds and listens; nullptr and *error (one line naming the path and the cause) on failure.
    static std::unique_ptr<UnixSocketFile> open(const Options& options, std::string* error);
    UnixSocketFile(const UnixSocketFile&) = delete;
    UnixSocketFile& operator=(const UnixSocketFile&) = delete;
    // Closes the socket and removes the file if it is still ours.
    ~UnixSocketFile();

    // Renames the socket over `path` if open() bound it beside a live one (take_over); called once
    // this process serves it. False and *error if the rename fails.
    bool install(std::string* error);
    // A new descriptor for the listening socket (non-blocking, close-on-exec), for one worker's
    // listener; -1 and *error on failure.
    int dup_fd(std::string* error) const;
    // Closes this object's descriptor once every listener has its own: when the last of those closes
    // (at stop), new clients are refused at once instead of waiting in a backlog nobody accepts.
    void close_fd();
    const std::string& path() const { return path_; }

  private:
    UnixSocketFile() = default;

    std::string path_;
    std::string final_path_; // take_over: where install() renames path_ to
    int fd_ = -1;
    dev_t dev_ = 0; // the file bind() created, to recognise it at removal
    ino_t ino_ = 0;
};

} // namespace gripd::net
