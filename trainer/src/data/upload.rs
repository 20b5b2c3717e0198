//! Host-to-device copies of the loader's batches: on a GPU, from page-locked (pinned) memory and
//! asynchronously, as `DataLoader(pin_memory=True)` plus `.to(device, non_blocking=True)` do in
//! PyTorch, so the loader thread never waits for the device and the copy overlaps the step.
//!
//! The copy is queued on the current CUDA stream of the loader thread (the default stream,
//! which the training thread's kernels use as well), so every kernel the step launches later sees
//! the finished copy. libtorch's pinned-memory allocator records the copy on its block and does
//! not hand the block out again before the copy is done, so dropping the host tensor is safe.

use tch::{Device, Tensor};

/// `t` (on the CPU) on `device`: unchanged on the CPU; on CUDA pinned, then copied without
/// blocking the calling thread. Where page-locked memory cannot be had (a container's locked
/// memory limit), the copy is an ordinary blocking one: slower, never wrong.
pub fn upload(t: Tensor, device: Device) -> Tensor {
    match device {
        Device::Cpu => t,
        _ => match t.f_pin_memory(device) {
            Ok(pinned) => pinned.to_device_(device, pinned.kind(), true, false),
            Err(_) => t.to_device(device),
        },
    }
}
