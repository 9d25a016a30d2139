// UnixSocketFile: what it does with the path before bind and at removal, on real files in a temp dir.
#include "gripd/net/unix_socket.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

using gripd::net::UnixSocketFile;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/gu-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() { std::system(("rm -rf " + path).c_str()); }
};

bool is_socket(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool exists(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

sockaddr_un address(const std::string& p) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, p.data(), p.size());
    return sa;
}

// A socket bound at p; listening if `listen`, else closed at once (a stale file).
int bound_socket(const std::string& p, bool listen) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa = address(p);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    if (listen) {
        REQUIRE(::listen(fd, 4) == 0);
        return fd;
    }
    ::close(fd);
    return -1;
}

bool connects(const std::string& p) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa = address(p);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    ::close(fd);
    return ok;
}

} // namespace

TEST_CASE("unix socket: bound, listening, mode applied, removed when destroyed", "[net]") {
    TempDir d;
    std::string p = d.path + "/s";
    std::string error;
    auto f = UnixSocketFile::open({p, 0600, "", ""}, &error);
    REQUIRE(f);
    CHECK(error.empty());
    CHECK(is_socket(p));
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(connects(p));
    int fd = f->dup_fd(&error);
    REQUIRE(fd >= 0);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    ::close(fd);
    f.reset();
    CHECK_FALSE(exists(p));
}

TEST_CASE("unix socket: a stale socket file is replaced", "[net]") {
    TempDir d;
    std::string p = d.path + "/s";
    bound_socket(p, false);
    REQUIRE(is_socket(p));
    std::string error;
    auto f = UnixSocketFile::open({p, -1, "", ""}, &error);
    REQUIRE(f);
    CHECK(connects(p));
}

TEST_CASE("unix socket: what is never removed", "[net]") {
    TempDir d;
    std::string p = d.path + "/s";
    std::string error;
    SECTION("a regular file") {
        std::ofstream(p) << "keep";
        CHECK_FALSE(UnixSocketFile::open({p, -1, "", ""}, &error));
        CHECK(error.find("exists and is not a socket") != std::string::npos);
        std::ifstream in(p);
        std::string text;
        in >> text;
        CHECK(text == "keep");
    }
    SECTION("a directory") {
        REQUIRE(::mkdir(p.c_str(), 0700) == 0);
        CHECK_FALSE(UnixSocketFile::open({p, -1, "", ""}, &error));
        CHECK(error.find("not a socket") != std::string::npos);
    }
    SECTION("a socket another process listens on") {
        int other = bound_socket(p, true);
        CHECK_FALSE(UnixSocketFile::open({p, -1, "", ""}, &error));
        CHECK(error.find("another process is listening") != std::string::npos);
        CHECK(connects(p));
        ::close(other);
    }
    SECTION("a file that replaced ours while it was open") {
        auto f = UnixSocketFile::open({p, -1, "", ""}, &error);
        REQUIRE(f);
        REQUIRE(::unlink(p.c_str()) == 0);
        bound_socket(p, false); // another instance's socket now
        f.reset();
        CHECK(is_socket(p));
    }
}

TEST_CASE("unix socket: errors name the path and the cause", "[net]") {
    TempDir d;
    std::string error;
    CHECK_FALSE(UnixSocketFile::open({d.path + "/no/s", -1, "", ""}, &error));
    CHECK(error == "unix socket " + d.path + "/no/s: directory " + d.path + "/no/ does not exist");
    CHECK_FALSE(UnixSocketFile::open({d.path + "/" + std::string(120, 'x'), -1, "", ""}, &error));
    CHECK(error.find("too long") != std::string::npos);
    CHECK_FALSE(UnixSocketFile::open({d.path + "/s", -1, "no-such-user-gripd", ""}, &error));
    CHECK(error.find("unknown user 'no-such-user-gripd'") != std::string::npos);
    CHECK_FALSE(exists(d.path + "/s")); // the half-made socket is gone
    CHECK_FALSE(UnixSocketFile::open({d.path + "/s", -1, "", "no-such-group-gripd"}, &error));
    CHECK(error.find("unknown group 'no-such-group-gripd'") != std::string::npos);
}

TEST_CASE("unix socket: an upgrade takes a live socket's path over only once installed", "[net]") {
    TempDir d;
    std::string p = d.path + "/s";
    std::string error;
    auto old_file = UnixSocketFile::open({p, 0600, "", ""}, &error);
    REQUIRE(old_file);
    struct stat before {};
    REQUIRE(::lstat(p.c_str(), &before) == 0);
    auto new_file = UnixSocketFile::open({p, 0600, "", "", /*take_over=*/true}, &error);
    REQUIRE(new_file);
    // Not yet installed: the path still names the old socket; the new one is bound beside it.
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    CHECK(st.st_ino == before.st_ino);
    CHECK(new_file->path() != p);
    CHECK(is_socket(new_file->path()));
    REQUIRE(new_file->install(&error));
    CHECK(new_file->path() == p);
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    CHECK(st.st_ino != before.st_ino);
    CHECK((st.st_mode & 0777) == 0600);
    old_file.reset(); // the old process leaves: the path is not its file any more, so it stays
    CHECK(is_socket(p));
    CHECK(connects(p));
    new_file.reset();
    CHECK_FALSE(exists(p));
}

TEST_CASE("unix socket: an upgrade that fails before install leaves the old socket alone", "[net]") {
    TempDir d;
    std::string p = d.path + "/s";
    std::string error;
    auto old_file = UnixSocketFile::open({p, -1, "", ""}, &error);
    REQUIRE(old_file);
    std::string beside;
    {
        auto new_file = UnixSocketFile::open({p, -1, "", "", true}, &error);
        REQUIRE(new_file);
        beside = new_file->path();
    }
    CHECK_FALSE(exists(beside));
    CHECK(connects(p));
}
