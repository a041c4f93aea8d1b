// Where impact keeps its files, and the one way it writes them.
#pragma once
#include <filesystem>
#include <string_view>

namespace impact {

std::filesystem::path config_home();  // $XDG_CONFIG_HOME/impact or ~/.config/impact
std::filesystem::path state_home();   // $XDG_STATE_HOME/impact or ~/.local/state/impact
std::filesystem::path cache_home();   // $XDG_CACHE_HOME/impact or ~/.cache/impact
std::filesystem::path data_home();    // $XDG_DATA_HOME/impact or ~/.local/share/impact (Crypt4GH keys)

// Creates every missing folder of `dir`, parents included, with mode 0700 (the XDG Base Directory
// specification's mode, whatever the umask), and leaves folders that already exist as they are. Every folder
// impact creates goes through here.
void create_private_dirs(const std::filesystem::path& dir);

// create_private_dirs, then sets the mode of `dir` itself to `mode` (default 0700) even when it already
// existed: for impact's own folders (tokens, caches), never for a folder the user named.
void ensure_private_dir(const std::filesystem::path& dir, unsigned mode = 0700);

// Writes `data` to a temporary file beside `path` with `mode`, fsyncs it and renames it over `path`, so a
// reader sees either the old content or the new, never a half-written file.
void write_file_atomic(const std::filesystem::path& path, std::string_view data, unsigned mode = 0600);

// Reads a whole file, refusing files larger than `max_bytes`. Throws Error(io).
std::string read_file(const std::filesystem::path& path, std::size_t max_bytes = 16u << 20);

// Like read_file, for files holding secrets: refuses a symbolic link (never followed), and anything but a
// regular file owned by the effective user. Throws Error(io); Error(not_found) when it does not exist.
std::string read_private_file(const std::filesystem::path& path, std::size_t max_bytes = 16u << 20);

}  // namespace impact
