//! The C API of `src/shim.cpp`, and the one place with unsafe code in this crate: raw pointers
//! to the shim's group object and to tch tensors (`*mut C_tensor` is an `at::Tensor*`).
#![allow(unsafe_code)]

#[cfg(not(cfkit_no_gloo))]
use std::ffi::{c_char, c_int, c_long, c_void, CString};

use tch::Tensor;

use crate::DistConfig;

pub(crate) enum InitError {
    /// Only built without Gloo (cfg `cfkit_no_gloo`).
    #[cfg_attr(not(cfkit_no_gloo), allow(dead_code))]
    Unavailable(String),
    /// Only built with Gloo.
    #[cfg_attr(cfkit_no_gloo, allow(dead_code))]
    Failed(String),
}

#[cfg(not(cfkit_no_gloo))]
extern "C" {
    fn cfkit_dist_init(
        rank: c_int,
        world: c_int,
        addr: *const c_char,
        port: c_int,
        timeout_ms: c_long,
        nccl: c_int,
        err: *mut c_char,
        errlen: usize,
    ) -> *mut c_void;
    fn cfkit_dist_has_nccl() -> c_int;
    fn cfkit_dist_allreduce_sum(
        h: *mut c_void,
        t: *mut c_void,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
    fn cfkit_dist_broadcast(
        h: *mut c_void,
        t: *mut c_void,
        root: c_int,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
    fn cfkit_dist_barrier(h: *mut c_void, err: *mut c_char, errlen: usize) -> c_int;
    fn cfkit_dist_free(h: *mut c_void);
}

#[cfg(not(cfkit_no_gloo))]
const ERR_LEN: usize = 2048;

#[cfg(not(cfkit_no_gloo))]
fn message(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The shim's group (TCP store + Gloo process group), freed on drop.
#[cfg(not(cfkit_no_gloo))]
pub(crate) struct Group(*mut c_void);

// The shim's group is used from one thread at a time (the training loop); c10d's objects are
// themselves thread-safe.
#[cfg(not(cfkit_no_gloo))]
unsafe impl Send for Group {}

/// Without Gloo there is no group: one cannot be made.
#[cfg(cfkit_no_gloo)]
pub(crate) struct Group(std::convert::Infallible);

/// Whether the shim was built with NCCL (CUDA tensors reduced on the device).
#[cfg(not(cfkit_no_gloo))]
pub(crate) fn has_nccl() -> bool {
    // SAFETY: a constant of the shim.
    unsafe { cfkit_dist_has_nccl() != 0 }
}

#[cfg(cfkit_no_gloo)]
pub(crate) fn has_nccl() -> bool {
    false
}

#[cfg(not(cfkit_no_gloo))]
impl Group {
    pub(crate) fn init(cfg: &DistConfig) -> Result<Self, InitError> {
        let addr = CString::new(cfg.master_addr.clone())
            .map_err(|_| InitError::Failed("MASTER_ADDR holds a NUL byte".into()))?;
        let mut err = vec![0u8; ERR_LEN];
        // SAFETY: `addr` and `err` outlive the call; the shim copies what it keeps.
        let h = unsafe {
            cfkit_dist_init(
                cfg.rank as c_int,
                cfg.world as c_int,
                addr.as_ptr(),
                c_int::from(cfg.master_port),
                cfg.timeout.as_millis() as c_long,
                c_int::from(cfg.nccl),
                err.as_mut_ptr().cast(),
                ERR_LEN,
            )
        };
        if h.is_null() {
            return Err(InitError::Failed(message(&err)));
        }
        Ok(Group(h))
    }

    fn call(&self, f: impl FnOnce(*mut c_void, *mut c_char) -> c_int) -> Result<(), String> {
        let mut err = vec![0u8; ERR_LEN];
        match f(self.0, err.as_mut_ptr().cast()) {
            0 => Ok(()),
            _ => Err(message(&err)),
        }
    }

    pub(crate) fn all_reduce_sum(&self, t: &mut Tensor) -> Result<(), String> {
        let p = t.as_mut_ptr().cast::<c_void>();
        // SAFETY: the group is live (owned by self); `p` points at the tensor handle `t` owns.
        self.call(|h, e| unsafe { cfkit_dist_allreduce_sum(h, p, e, ERR_LEN) })
    }

    pub(crate) fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<(), String> {
        let p = t.as_mut_ptr().cast::<c_void>();
        // SAFETY: as in all_reduce_sum.
        self.call(|h, e| unsafe { cfkit_dist_broadcast(h, p, root as c_int, e, ERR_LEN) })
    }

    pub(crate) fn barrier(&self) -> Result<(), String> {
        // SAFETY: the group is live.
        self.call(|h, e| unsafe { cfkit_dist_barrier(h, e, ERR_LEN) })
    }
}

#[cfg(not(cfkit_no_gloo))]
impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: the pointer came from cfkit_dist_init and is freed once.
        unsafe { cfkit_dist_free(self.0) }
    }
}

#[cfg(cfkit_no_gloo)]
impl Group {
    pub(crate) fn init(_: &DistConfig) -> Result<Self, InitError> {
        Err(InitError::Unavailable(
            "cfkit was built without Gloo's headers (install them with `./just gloo` — Debian's libgloo-dev — or set CFKIT_GLOO_INCLUDE, then `./just build`)".into(),
        ))
    }
    pub(crate) fn all_reduce_sum(&self, _: &mut Tensor) -> Result<(), String> {
        match self.0 {}
    }
    pub(crate) fn broadcast(&self, _: &mut Tensor, _: usize) -> Result<(), String> {
        match self.0 {}
    }
    pub(crate) fn barrier(&self) -> Result<(), String> {
        match self.0 {}
    }
}

extern "C" {
    fn cfkit_set_tf32(matmul: std::ffi::c_int, cudnn: std::ffi::c_int) -> std::ffi::c_int;
    fn cfkit_autocast_enter(cuda: std::ffi::c_int, scalar_type: std::ffi::c_int)
        -> std::ffi::c_int;
    fn cfkit_autocast_exit(cuda: std::ffi::c_int, prev: std::ffi::c_int);
    fn cfkit_autocast_state(cuda: std::ffi::c_int) -> std::ffi::c_int;
    fn cfkit_autocast_set_enabled(
        cuda: std::ffi::c_int,
        enabled: std::ffi::c_int,
    ) -> std::ffi::c_int;
    fn cfkit_adamw_step(
        params: *mut *mut std::ffi::c_void,
        grads: *mut *mut std::ffi::c_void,
        exp_avgs: *mut *mut std::ffi::c_void,
        exp_avg_sqs: *mut *mut std::ffi::c_void,
        steps: *mut *mut std::ffi::c_void,
        n: usize,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        max_norm: f64,
        norm_out: *mut std::ffi::c_void,
        err: *mut std::ffi::c_char,
        errlen: usize,
    ) -> std::ffi::c_int;
}

/// `src/aten_ops.cpp`'s clipped fused AdamW step over equally long tensor lists (see
/// [`crate::aten::AdamwStep`]); the global gradient norm before clipping goes into `norm`.
pub(crate) fn adamw_step(
    lists: [&[Tensor]; 5],
    hyper: [f64; 6],
    norm: &mut Tensor,
) -> Result<(), String> {
    let n = lists[0].len();
    if lists.iter().any(|l| l.len() != n) {
        return Err("the tensor lists of an AdamW step differ in length".into());
    }
    // The tensor handles are only read by the shim (it copies the at::Tensor, sharing storage).
    let mut ptrs: Vec<Vec<*mut std::ffi::c_void>> = lists
        .iter()
        .map(|l| {
            l.iter()
                .map(|t| t.as_ptr() as *mut std::ffi::c_void)
                .collect()
        })
        .collect();
    let [lr, beta1, beta2, wd, eps, max_norm] = hyper;
    let mut err = vec![0u8; 2048];
    // SAFETY: every pointer is a live tensor handle borrowed for the call; `norm` and `err` are
    // exclusively borrowed; the lists have `n` entries each (checked above).
    let rc = unsafe {
        let [p, g, m, v, s] = &mut ptrs[..] else {
            unreachable!("five lists")
        };
        cfkit_adamw_step(
            p.as_mut_ptr(),
            g.as_mut_ptr(),
            m.as_mut_ptr(),
            v.as_mut_ptr(),
            s.as_mut_ptr(),
            n,
            lr,
            beta1,
            beta2,
            wd,
            eps,
            max_norm,
            norm.as_mut_ptr().cast(),
            err.as_mut_ptr().cast(),
            err.len(),
        )
    };
    match rc {
        0 => Ok(()),
        _ => {
            let end = err.iter().position(|&b| b == 0).unwrap_or(err.len());
            Err(String::from_utf8_lossy(&err[..end]).into_owned())
        }
    }
}

/// Sets libtorch's TF32 switches (`Some`) and returns them: (cuBLAS matmuls, cuDNN convolutions).
pub(crate) fn set_tf32(matmul: Option<bool>, cudnn: Option<bool>) -> (bool, bool) {
    let arg = |b: Option<bool>| b.map_or(-1, std::ffi::c_int::from);
    // SAFETY: plain setters and getters of libtorch's global context.
    let state = unsafe { cfkit_set_tf32(arg(matmul), arg(cudnn)) };
    (state & 1 != 0, state & 2 != 0)
}

/// Opens an autocast region on this thread (`cuda` or CPU, to ScalarType code `dtype`); returns
/// what [`autocast_exit`] needs.
pub(crate) fn autocast_enter(cuda: bool, dtype: i32) -> i32 {
    // SAFETY: sets libtorch's thread-local autocast state; any ScalarType code is accepted.
    unsafe { cfkit_autocast_enter(cuda.into(), dtype) }
}

pub(crate) fn autocast_exit(cuda: bool, prev: i32) {
    // SAFETY: closes the region `autocast_enter` opened on this thread.
    unsafe { cfkit_autocast_exit(cuda.into(), prev) }
}

/// (ScalarType code autocast casts to, whether it is on) for `cuda` or the CPU on this thread.
pub(crate) fn autocast_state(cuda: bool) -> (i32, bool) {
    // SAFETY: reads libtorch's thread-local autocast state.
    let s = unsafe { cfkit_autocast_state(cuda.into()) };
    (s & 255, s & 256 != 0)
}

/// Switches autocast for `cuda` or the CPU on this thread; returns whether it was on.
pub(crate) fn autocast_set_enabled(cuda: bool, enabled: bool) -> bool {
    // SAFETY: sets libtorch's thread-local autocast flag.
    unsafe { cfkit_autocast_set_enabled(cuda.into(), enabled.into()) != 0 }
}
