#include "gripd/net/unix_socket.hpp"

#include "gripd/core/log.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace gripd::net {

namespace {

constexpr int kBacklog = 4096;

std::string errno_text(int err) {
    return std::strerror(err);
}

bool make_address(const std::string& path, sockaddr_un* sa, std::string* error) {
    *sa = sockaddr_un{};
    sa->sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(sa->sun_path)) {
        *error = "unix socket path '" + path + "' is " + (path.empty() ? "empty" : "too long") +
                 " (at most " + std::to_string(sizeof(sa->sun_path) - 1) + " bytes)";
        return false;
    }
    std::memcpy(sa->sun_path, path.data(), path.size());
    return true;
}

// True if something accepts connections on the socket at `sa` (a running process owns it).
bool socket_is_live(const sockaddr_un& sa) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    // A local connect completes or fails at once; a full backlog (EAGAIN) still means a listener.
    int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
    int err = errno;
    ::close(fd);
    return r == 0 || err == EAGAIN;
}

// Clears the way for bind(): nothing there, or a stale socket (removed). Anything else is an error.
bool clear_path(const std::string& path, const sockaddr_un& sa, std::string* error) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return true;
        *error = "unix socket " + path + ": " + errno_text(errno);
        return false;
    }
    if (!S_ISSOCK(st.st_mode)) {
        *error = "unix socket " + path +
                 ": the path exists and is not a socket (not removed; remove it or "
                 "choose another path)";
        return false;
    }
    if (socket_is_live(sa)) {
        *error = "unix socket " + path + ": another process is listening on it";
        return false;
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        *error = "unix socket " + path + ": cannot remove the stale socket file: " + errno_text(errno);
        return false;
    }
    LOG_INFO("main", "replaced the stale unix socket file %s", path.c_str());
    return true;
}

// getpwnam_r/getgrnam_r with a buffer that grows on ERANGE.
template <class Entry, class Fn> bool lookup(const std::string& name, Entry* out, Fn fn) {
    std::vector<char> buf(1024);
    for (;;) {
        Entry* result = nullptr;
        int r = fn(name.c_str(), out, buf.data(), buf.size(), &result);
        if (r == ERANGE && buf.size() < (1u << 20)) {
            buf.resize(buf.size() * 2);
            continue;
        }
        return r == 0 && result != nullptr;
    }
}

// mode, user and group for the new file, as Pushpin applies them (chmod, then chown).
bool apply_options(const UnixSocketFile::Options& o, std::string* error) {
    if (o.mode >= 0 && ::chmod(o.path.c_str(), static_cast<mode_t>(o.mode)) != 0) {
        *error = "unix socket " + o.path + ": cannot set mode: " + errno_text(errno);
        return false;
    }
    if (!o.user.empty()) {
        passwd pw{};
        if (!lookup(o.user, &pw, ::getpwnam_r)) {
            *error = "unix socket " + o.path + ": unknown user '" + o.user + "'";
            return false;
        }
        if (::chown(o.path.c_str(), pw.pw_uid, static_cast<gid_t>(-1)) != 0) {
            *error = "unix socket " + o.path + ": cannot set user '" + o.user + "': " + errno_text(errno);
            return false;
        }
    }
    if (!o.group.empty()) {
        group gr{};
        if (!lookup(o.group, &gr, ::getgrnam_r)) {
            *error = "unix socket " + o.path + ": unknown group '" + o.group + "'";
            return false;
        }
        if (::chown(o.path.c_str(), static_cast<uid_t>(-1), gr.gr_gid) != 0) {
            *error = "unix socket " + o.path + ": cannot set group '" + o.group + "': " + errno_text(errno);
            return false;
        }
    }
    return true;
}

} // namespace

std::unique_ptr<UnixSocketFile> UnixSocketFile::open(const Options& o, std::string* error) {
    sockaddr_un sa{};
    if (!make_address(o.path, &sa, error)) return nullptr;
    std::string dir = o.path.substr(0, o.path.rfind('/') + 1);
    struct stat dst {};
    if (!dir.empty() && ::stat(dir.c_str(), &dst) != 0) {
        *error = "unix socket " + o.path + ": directory " + dir +
                 (errno == ENOENT ? " does not exist" : ": " + errno_text(errno));
        return nullptr;
    }
    if (!dir.empty() && !S_ISDIR(dst.st_mode)) {
        *error = "unix socket " + o.path + ": " + dir + " is not a directory";
        return nullptr;
    }
    // Taking over from a running gripd (an upgrade): bind beside the live socket, and rename over it
    // once this process serves (install()); the old one keeps what it already accepted.
    Options bound = o;
    struct stat cur {};
    if (o.take_over && ::lstat(o.path.c_str(), &cur) == 0 && S_ISSOCK(cur.st_mode) && socket_is_live(sa)) {
        bound.path = o.path + ".new" + std::to_string(::getpid());
        if (!make_address(bound.path, &sa, error)) return nullptr;
    }
    if (!clear_path(bound.path, sa, error)) return nullptr;
    std::unique_ptr<UnixSocketFile> self(new UnixSocketFile());
    if (bound.path != o.path) self->final_path_ = o.path;
    self->fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (self->fd_ < 0) {
        *error = "unix socket " + o.path + ": socket: " + errno_text(errno);
        return nullptr;
    }
    if (::bind(self->fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
        *error = "unix socket " + bound.path + ": bind: " + errno_text(errno);
        return nullptr; // nothing was created: the destructor only closes the socket
    }
    self->path_ = bound.path; // from here on the file is ours to remove
    struct stat st {};
    if (::lstat(bound.path.c_str(), &st) == 0) {
        self->dev_ = st.st_dev;
        self->ino_ = st.st_ino;
    }
    if (!apply_options(bound, error)) return nullptr;
    if (::listen(self->fd_, kBacklog) != 0) {
        *error = "unix socket " + bound.path + ": listen: " + errno_text(errno);
        return nullptr;
    }
    return self;
}

UnixSocketFile::~UnixSocketFile() {
    if (fd_ >= 0) ::close(fd_);
    if (path_.empty()) return;
    // Only the file we created: another process may have replaced it since.
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev_ && st.st_ino == ino_)
        ::unlink(path_.c_str());
}

bool UnixSocketFile::install(std::string* error) {
    if (final_path_.empty()) return true;
    if (::rename(path_.c_str(), final_path_.c_str()) != 0) {
        *error = "unix socket " + final_path_ + ": cannot take it over: rename: " + errno_text(errno);
        return false;
    }
    path_ = final_path_; // same file (dev, inode): still ours to remove
    final_path_.clear();
    LOG_INFO("main", "took over the unix socket %s from the running process", path_.c_str());
    return true;
}

void UnixSocketFile::close_fd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

int UnixSocketFile::dup_fd(std::string* error) const {
    int fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) *error = "unix socket " + path_ + ": dup: " + errno_text(errno);
    return fd;
}

} // namespace gripd::net
