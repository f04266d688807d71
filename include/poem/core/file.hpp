#pragma once
// Whole files in and out, the one way every reader and writer of poem touches the disk:
//   read_file(path, what)                 the file's bytes; a missing path, a directory or a failed
//                                         read is a poem::error naming `what` and the path
//   write_file_atomically(path, bytes, what)
//                                         a temporary file beside `path`, written, flushed (fsync)
//                                         and renamed over it: a reader sees the old file or the new
//                                         one, and a failed write (a full disk) leaves the old file
//                                         as it was

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "poem/core/error.hpp"
#include "poem/core/span.hpp"

namespace poem {

inline std::vector<std::uint8_t> read_file(const std::string& path, const char* what) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    check(!ec && std::filesystem::exists(status), what, ": cannot open '", path, "': no such file");
    check(std::filesystem::is_regular_file(status), what, ": '", path, "' is not a regular file",
          std::filesystem::is_directory(status) ? " (it is a directory)" : "");
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    check(static_cast<bool>(in), what, ": cannot open '", path, "'");
    const auto size = static_cast<std::streamoff>(in.tellg());
    check(size >= 0, what, ": cannot read the size of '", path, "'");
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
    in.seekg(0);
    if (size > 0) in.read(reinterpret_cast<char*>(bytes.data()), size);
    check(static_cast<bool>(in), what, ": cannot read '", path, "'");
    return bytes;
}

inline void write_file_atomically(const std::string& path, span<const std::uint8_t> bytes, const char* what) {
#if defined(__unix__) || defined(__APPLE__)
    std::string tmp = path + ".tmp.XXXXXX";
    const int fd = ::mkstemp(&tmp[0]);
    check(fd >= 0, what, ": cannot create a temporary file beside '", path, "'");
    std::size_t done = 0;
    bool ok = true;
    while (ok && done < bytes.size()) {
        const ::ssize_t k = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (k > 0) done += static_cast<std::size_t>(k);
        else ok = false;
    }
    ok = ok && ::fchmod(fd, 0644) == 0 && ::fsync(fd) == 0;  // mkstemp makes it 0600
    ok = (::close(fd) == 0) && ok;
#else
    const std::string tmp = path + ".tmp";
    bool ok = false;
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        check(static_cast<bool>(out), what, ": cannot open '", tmp, "' for writing");
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        out.flush();
        ok = static_cast<bool>(out);
    }
#endif
    if (!ok) {
        std::remove(tmp.c_str());
        detail::fail("poem: ", what, ": writing '", tmp, "' failed (the old '", path, "' is unchanged)");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        detail::fail("poem: ", what, ": cannot rename '", tmp, "' over '", path, "'");
    }
}

}  // namespace poem
