// ATen operations that tch does not bind (they take lists of tensors), for cfkit's optimizer:
// one clipped AdamW step as torch runs it with `clip_grad_norm_(foreach)` and
// `AdamW(fused=True)` — the per-tensor norms in one foreach kernel, the clip factor applied on the
// device without reading it back, and the update of every parameter in libtorch's fused AdamW
// kernel (CPU and CUDA). Errors are caught and written into `err` (never thrown across the
// boundary). Built always (only ATen's headers are needed), unlike the c10d shim.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>

#include <vector>

#include "guard.h"

namespace {
std::vector<at::Tensor> list(void** ts, size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(*static_cast<at::Tensor*>(ts[i]));
  }
  return out;
}
}  // namespace

extern "C" {

// params, grads, exp_avgs, exp_avg_sqs, steps: `n` tensors each (steps: 0-dim float32 on the
// parameter's device, advanced by one before the update). `max_norm` <= 0: no clipping. The global
// gradient norm before clipping is copied into `norm_out` (0-dim float32 on the device).
int cfkit_adamw_step(void** params, void** grads, void** exp_avgs, void** exp_avg_sqs,
                     void** steps, size_t n, double lr, double beta1, double beta2,
                     double weight_decay, double eps, double max_norm, void* norm_out, char* err,
                     size_t errlen) {
  return cfkit::guarded(err, errlen, [&] {
    at::NoGradGuard no_grad;
    auto p = list(params, n), g = list(grads, n), m = list(exp_avgs, n),
         v = list(exp_avg_sqs, n), s = list(steps, n);
    auto& norm = *static_cast<at::Tensor*>(norm_out);
    if (n == 0) {
      norm.zero_();
      return;
    }
    // torch.nn.utils.clip_grad_norm_ (foreach): the norm of the per-tensor norms.
    auto norms = at::_foreach_norm(g, 2);
    auto total = at::linalg_vector_norm(at::stack(norms), 2);
    norm.copy_(total);
    if (max_norm > 0) {
      auto coef = at::clamp(max_norm / (total + 1e-6), std::nullopt, 1.0);
      at::_foreach_mul_(g, coef);
    }
    // As torch's _fused_adamw: the counts are advanced first, the kernel reads them.
    at::_foreach_add_(s, 1);
    at::_fused_adamw_(p, g, m, v, {}, s, lr, beta1, beta2, weight_decay, eps,
                      /*amsgrad=*/false, /*maximize=*/false);
  });
}

// TF32 for float32 work on NVIDIA GPUs (Ampere and newer): cuBLAS matmuls (`matmul`,
// torch.backends.cuda.matmul.allow_tf32) and cuDNN convolutions (`cudnn`,
// torch.backends.cudnn.allow_tf32). libtorch's own switches; a CPU build keeps them and has no use
// for them. Returns the state now: bit 0 matmul, bit 1 cuDNN.
int cfkit_set_tf32(int matmul, int cudnn) {
  if (matmul >= 0) at::globalContext().setAllowTF32CuBLAS(matmul != 0);
  if (cudnn >= 0) at::globalContext().setAllowTF32CuDNN(cudnn != 0);
  return (at::globalContext().allowTF32CuBLAS() ? 1 : 0) |
         (at::globalContext().allowTF32CuDNN() ? 2 : 0);
}

// An autocast region on this thread (autocast state is thread-local), as `torch.autocast` opens
// one: for device type `cuda` (1) or the CPU (0), casting to `scalar_type` (a c10::ScalarType
// code, e.g. BFloat16 = 15). Returns whether autocast was on before, for cfkit_autocast_exit.
int cfkit_autocast_enter(int cuda, int scalar_type) {
  auto dt = cuda ? at::kCUDA : at::kCPU;
  bool prev = at::autocast::is_autocast_enabled(dt);
  at::autocast::set_autocast_dtype(dt, static_cast<at::ScalarType>(scalar_type));
  at::autocast::set_autocast_enabled(dt, true);
  at::autocast::increment_nesting();
  return prev ? 1 : 0;
}

// Leaves the region cfkit_autocast_enter opened (`prev`: what it returned); the cache of cast
// weights is dropped when the outermost region ends, as torch.autocast's __exit__ does.
void cfkit_autocast_exit(int cuda, int prev) {
  auto dt = cuda ? at::kCUDA : at::kCPU;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(dt, prev != 0);
}

// The dtype autocast casts to on `cuda` (1) or the CPU (0), and whether it is on (bit 8).
int cfkit_autocast_state(int cuda) {
  auto dt = cuda ? at::kCUDA : at::kCPU;
  return static_cast<int>(at::autocast::get_autocast_dtype(dt)) |
         (at::autocast::is_autocast_enabled(dt) ? 256 : 0);
}

// Switches autocast for `cuda` (1) or the CPU (0) on this thread on or off; returns whether it
// was on (to restore it).
int cfkit_autocast_set_enabled(int cuda, int enabled) {
  auto dt = cuda ? at::kCUDA : at::kCPU;
  bool prev = at::autocast::is_autocast_enabled(dt);
  at::autocast::set_autocast_enabled(dt, enabled != 0);
  return prev ? 1 : 0;
}
}
