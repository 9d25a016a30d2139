// RSS of a process and all its descendants from /proc: pushpin is several processes (runner,
// condure, zurl, pushpin-proxy, pushpin-handler), so memory is measured on the whole tree.
#pragma once

#include <string>
#include <vector>

namespace rtb {

struct ProcInfo {
    int pid = 0;
    int ppid = 0;
    std::string comm;
    long rss_kib = 0;
};

// `root` and its descendants (empty when root does not exist).
std::vector<ProcInfo> proc_tree(int root);
long tree_rss_kib(const std::vector<ProcInfo>& t);
// "comm:rss,comm:rss,..." for the RESULT line.
std::string tree_desc(const std::vector<ProcInfo>& t);

} // namespace rtb
