#include "proc_tree.hpp"

#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace rtb {

namespace {
bool read_proc(int pid, ProcInfo& p) {
    std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(st, line)) return false;
    size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) return false;
    p.pid = pid;
    p.comm = line.substr(open + 1, close - open - 1);
    char state = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &p.ppid) != 2) return false;
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    p.rss_kib = 0;
    while (std::getline(status, line)) {
        if (line.starts_with("VmRSS:")) {
            p.rss_kib = std::strtol(line.c_str() + 6, nullptr, 10);
            break;
        }
    }
    return true;
}
} // namespace

std::vector<ProcInfo> proc_tree(int root) {
    std::vector<ProcInfo> all;
    if (DIR* d = opendir("/proc")) {
        while (dirent* e = readdir(d)) {
            if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
            ProcInfo p;
            if (read_proc(std::atoi(e->d_name), p)) all.push_back(p);
        }
        closedir(d);
    }
    std::vector<ProcInfo> out;
    std::vector<int> frontier{root};
    for (size_t depth = 0; depth < 8 && !frontier.empty(); ++depth) {
        std::vector<int> next;
        for (const auto& p : all) {
            if (std::find(frontier.begin(), frontier.end(), p.pid) != frontier.end()) out.push_back(p);
            if (std::find(frontier.begin(), frontier.end(), p.ppid) != frontier.end()) next.push_back(p.pid);
        }
        frontier = std::move(next);
    }
    return out;
}

long tree_rss_kib(const std::vector<ProcInfo>& t) {
    long sum = 0;
    for (const auto& p : t)
        sum += p.rss_kib;
    return sum;
}

std::string tree_desc(const std::vector<ProcInfo>& t) {
    std::string s;
    for (const auto& p : t) {
        if (!s.empty()) s += ",";
        s += p.comm + ":" + std::to_string(p.rss_kib);
    }
    return s;
}

} // namespace rtb
