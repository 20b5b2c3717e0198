// A C API over libtorch's c10d for cfkit-dist (Rust): a TCPStore rendezvous and a Gloo process
// group; all-reduce (sum), broadcast and barrier of one tensor at a time, each waiting at most the
// group's timeout. Errors are caught and written into `err` (never thrown across the boundary).
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstring>
#include <string>

namespace {
struct Group {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::chrono::milliseconds timeout;
};

void put(char* err, size_t len, const std::string& msg) {
  if (err && len > 0) {
    std::strncpy(err, msg.c_str(), len - 1);
    err[len - 1] = '\0';
  }
}
}  // namespace

extern "C" {

void* cfkit_dist_init(int rank, int world, const char* addr, int port, long timeout_ms, char* err,
                      size_t errlen) {
  try {
    auto g = new Group();
    g->timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(port);
    o.isServer = rank == 0;
    o.numWorkers = world;
    o.waitWorkers = true;
    o.timeout = g->timeout;
    g->store = c10::make_intrusive<c10d::TCPStore>(std::string(addr), o);
    auto opts = c10d::ProcessGroupGloo::Options::create_default(g->timeout);
    g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, rank, world, opts);
    return g;
  } catch (const c10::Error& e) {
    // Without the C++ stack trace that what() appends.
    put(err, errlen, e.what_without_backtrace());
    return nullptr;
  } catch (const std::exception& e) {
    put(err, errlen, e.what());
    return nullptr;
  }
}

int cfkit_dist_allreduce_sum(void* handle, void* tensor, char* err, size_t errlen) {
  try {
    auto g = static_cast<Group*>(handle);
    std::vector<at::Tensor> ts{*static_cast<at::Tensor*>(tensor)};
    g->pg->allreduce(ts)->wait(g->timeout);
    return 0;
  } catch (const c10::Error& e) {
    // Without the C++ stack trace that what() appends.
    put(err, errlen, e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    put(err, errlen, e.what());
    return 1;
  }
}

int cfkit_dist_broadcast(void* handle, void* tensor, int root, char* err, size_t errlen) {
  try {
    auto g = static_cast<Group*>(handle);
    std::vector<at::Tensor> ts{*static_cast<at::Tensor*>(tensor)};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    g->pg->broadcast(ts, opts)->wait(g->timeout);
    return 0;
  } catch (const c10::Error& e) {
    // Without the C++ stack trace that what() appends.
    put(err, errlen, e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    put(err, errlen, e.what());
    return 1;
  }
}

int cfkit_dist_barrier(void* handle, char* err, size_t errlen) {
  try {
    auto g = static_cast<Group*>(handle);
    g->pg->barrier()->wait(g->timeout);
    return 0;
  } catch (const c10::Error& e) {
    // Without the C++ stack trace that what() appends.
    put(err, errlen, e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    put(err, errlen, e.what());
    return 1;
  }
}

void cfkit_dist_free(void* handle) {
  delete static_cast<Group*>(handle);
}
}
