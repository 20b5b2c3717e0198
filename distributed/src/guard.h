// Errors across the C boundary of cfkit's C++ shims (shim.cpp, aten_ops.cpp): nothing is thrown
// into Rust; a failing call returns 1 with its message in the caller's `err` buffer.
#pragma once

#include <c10/util/Exception.h>

#include <cstring>
#include <exception>
#include <string>

namespace cfkit {

// Copies `msg` into `err` (at most `len` bytes, NUL-terminated).
inline void put(char* err, size_t len, const std::string& msg) {
  if (err && len > 0) {
    std::strncpy(err, msg.c_str(), len - 1);
    err[len - 1] = '\0';
  }
}

// Runs `f`, turning an exception into 1 and its message in `err` (c10 errors without the C++
// stack trace that what() appends); 0 when `f` returns.
template <typename F>
int guarded(char* err, size_t errlen, F&& f) {
  try {
    f();
    return 0;
  } catch (const c10::Error& e) {
    put(err, errlen, e.what_without_backtrace());
  } catch (const std::exception& e) {
    put(err, errlen, e.what());
  }
  return 1;
}

}  // namespace cfkit
