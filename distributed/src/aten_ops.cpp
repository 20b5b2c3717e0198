// ATen operations that tch does not bind (they take lists of tensors), for cfkit's optimizer:
// one clipped AdamW step as torch runs it with `clip_grad_norm_(foreach)` and
// `AdamW(fused=True)` — the per-tensor norms in one foreach kernel, the clip factor applied on the
// device without reading it back, and the update of every parameter in libtorch's fused AdamW
// kernel (CPU and CUDA). Errors are caught and written into `err` (never thrown across the
// boundary). Built always (only ATen's headers are needed), unlike the c10d shim.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
void put(char* err, size_t len, const std::string& msg) {
  if (err && len > 0) {
    std::strncpy(err, msg.c_str(), len - 1);
    err[len - 1] = '\0';
  }
}

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
  try {
    at::NoGradGuard no_grad;
    auto p = list(params, n), g = list(grads, n), m = list(exp_avgs, n),
         v = list(exp_avg_sqs, n), s = list(steps, n);
    auto& norm = *static_cast<at::Tensor*>(norm_out);
    if (n == 0) {
      norm.zero_();
      return 0;
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
    return 0;
  } catch (const c10::Error& e) {
    put(err, errlen, e.what_without_backtrace());
  } catch (const std::exception& e) {
    put(err, errlen, e.what());
  }
  return 1;
}
}
