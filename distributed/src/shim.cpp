// A C API over libtorch's c10d for cfkit-distributed (Rust): a TCPStore rendezvous, a Gloo process
// group (CPU tensors and control messages) and, when built with CFKIT_WITH_NCCL, an NCCL process
// group for CUDA tensors on the same store (torch's own "cpu:gloo,cuda:nccl" split). All-reduce
// (sum), broadcast and barrier of one tensor at a time, each waiting at most the group's timeout.
// Errors are caught and written into `err` (never thrown across the boundary).
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CFKIT_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "guard.h"

namespace {
struct Group {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  // CUDA tensors go here when set (NCCL); otherwise everything goes through Gloo.
  c10::intrusive_ptr<c10d::Backend> cuda;
  std::chrono::milliseconds timeout;
};

// The group that reduces `t`.
c10d::Backend& backend_for(Group* g, const at::Tensor& t) {
  if (t.is_cuda() && g->cuda) {
    return *g->cuda;
  }
  return *g->gloo;
}

using cfkit::guarded;
}  // namespace

extern "C" {

int cfkit_dist_has_nccl() {
#ifdef CFKIT_WITH_NCCL
  return 1;
#else
  return 0;
#endif
}

void* cfkit_dist_init(int rank, int world, const char* addr, int port, long timeout_ms, int nccl,
                      char* err, size_t errlen) {
  auto g = new Group();
  int failed = guarded(err, errlen, [&] {
    g->timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(port);
    o.isServer = rank == 0;
    o.numWorkers = world;
    o.waitWorkers = true;
    o.timeout = g->timeout;
    g->store = c10::make_intrusive<c10d::TCPStore>(std::string(addr), o);
    auto gloo_store = c10::make_intrusive<c10d::PrefixStore>("gloo", g->store);
    auto opts = c10d::ProcessGroupGloo::Options::create_default(g->timeout);
    g->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(gloo_store, rank, world, opts);
    if (nccl) {
#ifdef CFKIT_WITH_NCCL
      // Collectives wait (and time out) in wait(), as Gloo's do, instead of in the watchdog.
      setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
      auto nccl_store = c10::make_intrusive<c10d::PrefixStore>("nccl", g->store);
      auto nopts = c10d::ProcessGroupNCCL::Options::create();
      nopts->timeout = g->timeout;
      g->cuda = c10::make_intrusive<c10d::ProcessGroupNCCL>(nccl_store, rank, world, nopts);
#else
      throw std::runtime_error("this cfkit was built without NCCL");
#endif
    }
  });
  if (failed) {
    delete g;
    return nullptr;
  }
  return g;
}

int cfkit_dist_allreduce_sum(void* handle, void* tensor, char* err, size_t errlen) {
  return guarded(err, errlen, [&] {
    auto g = static_cast<Group*>(handle);
    auto& t = *static_cast<at::Tensor*>(tensor);
    std::vector<at::Tensor> ts{t};
    backend_for(g, t).allreduce(ts)->wait(g->timeout);
  });
}

int cfkit_dist_broadcast(void* handle, void* tensor, int root, char* err, size_t errlen) {
  return guarded(err, errlen, [&] {
    auto g = static_cast<Group*>(handle);
    auto& t = *static_cast<at::Tensor*>(tensor);
    std::vector<at::Tensor> ts{t};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    backend_for(g, t).broadcast(ts, opts)->wait(g->timeout);
  });
}

int cfkit_dist_barrier(void* handle, char* err, size_t errlen) {
  return guarded(err, errlen, [&] {
    auto g = static_cast<Group*>(handle);
    g->gloo->barrier()->wait(g->timeout);
  });
}

void cfkit_dist_free(void* handle) {
  delete static_cast<Group*>(handle);
}
}
