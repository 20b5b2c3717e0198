//! Compiles `src/shim.cpp` — a C API over libtorch's c10d (`TCPStore`, `ProcessGroupGloo`, and
//! `ProcessGroupNCCL` when it can) — and `src/aten_ops.cpp` (ATen operations tch does not bind:
//! the optimizer's fused AdamW step; always built) against the headers of the libtorch that
//! torch-sys links (`DEP_TCH_LIBTORCH_LIB/../include`).
//!
//! - Gloo: the torch wheel ships c10d's headers and its Gloo implementation (inside libtorch_cpu)
//!   but not Gloo's own headers, which `ProcessGroupGloo.hpp` includes: they come from Debian's
//!   `libgloo-dev` (/usr/include/gloo; `CFKIT_GLOO_INCLUDE` names another directory). Without
//!   them the shim is not built and `ProcessGroup::init` says so (cfg `cfkit_no_gloo`).
//! - NCCL: when libtorch has CUDA (`libtorch_cuda.so`, where `ProcessGroupNCCL` lives) and the
//!   headers of NCCL and CUDA are found — the `nvidia/*/include` directories of the PyPI packages
//!   the CUDA torch wheel depends on, next to `torch/` in site-packages, or under
//!   `CFKIT_NVIDIA_DIR` — the shim also builds the NCCL group (define `CFKIT_WITH_NCCL`).
//!   `CFKIT_NO_NCCL=1` leaves it out.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=src/shim.cpp");
    println!("cargo:rerun-if-changed=src/aten_ops.cpp");
    println!("cargo:rerun-if-changed=src/guard.h");
    for var in [
        "CFKIT_GLOO_INCLUDE",
        "CFKIT_NVIDIA_DIR",
        "CFKIT_NO_NCCL",
        "DEP_TCH_LIBTORCH_LIB",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo::rustc-check-cfg=cfg(cfkit_no_gloo)");
    let gloo = std::env::var("CFKIT_GLOO_INCLUDE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/include"));
    let torch_lib = std::env::var("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from);
    // As ../build.rs does for the other crates: an rpath to libtorch for this crate's tests.
    if let Ok(lib) = &torch_lib {
        println!("cargo:rustc-link-arg=-Wl,-rpath={}", lib.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
    // Rerun when Gloo's headers appear or change, so that a build made before `libgloo-dev` was
    // installed does not stay without the distributed layer: watch the headers' directory when
    // it is there, else the include directory that will hold it (installing a package gives the
    // directory a new entry, and so a new mtime; the headers themselves keep the package's older
    // mtimes, so watching a header that is missing would not notice it arrive).
    let watched = if gloo.join("gloo").is_dir() {
        gloo.join("gloo")
    } else {
        gloo.clone()
    };
    println!("cargo:rerun-if-changed={}", watched.display());
    // ATen operations tch does not bind (the optimizer's fused step): always built.
    let lib = torch_lib.expect("torch-sys exports DEP_TCH_LIBTORCH_LIB (libtorch's lib directory)");
    let include = lib.join("../include");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("src/aten_ops.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .flag_if_supported("-w")
        .opt_level(1)
        .compile("cfkit_aten_ops");
    if !gloo.join("gloo/config.h").is_file() {
        println!(
            "cargo:warning=cfkit-distributed: Gloo headers not found under {} (apt-get install libgloo-dev); distributed training is unavailable in this build",
            gloo.display()
        );
        println!("cargo:rustc-cfg=cfkit_no_gloo");
        return;
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .file("src/shim.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include(&gloo)
        .define("USE_C10D_GLOO", None)
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .flag_if_supported("-w")
        .opt_level(1);
    if let Some(dirs) = nccl_includes(&lib) {
        for d in &dirs {
            build.include(d);
        }
        build
            .define("USE_C10D_NCCL", None)
            .define("USE_CUDA", None)
            .define("CFKIT_WITH_NCCL", None);
        // ProcessGroupNCCL's code is in libtorch_cuda.
        println!("cargo:rustc-link-arg=-ltorch_cuda");
    }
    build.compile("cfkit_dist_shim");
}

/// The include directories for NCCL and CUDA, when libtorch has CUDA and both are found.
fn nccl_includes(lib: &Path) -> Option<Vec<PathBuf>> {
    if std::env::var_os("CFKIT_NO_NCCL").is_some() || !lib.join("libtorch_cuda.so").is_file() {
        return None;
    }
    let nvidia = std::env::var("CFKIT_NVIDIA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| lib.join("../../nvidia"));
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&nvidia)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("include")))
        .filter(|d| d.is_dir())
        .collect();
    dirs.sort();
    let has = |h: &str| dirs.iter().any(|d| d.join(h).is_file());
    if has("nccl.h") && has("cuda_runtime_api.h") {
        Some(dirs)
    } else {
        println!(
            "cargo:warning=cfkit-distributed: libtorch has CUDA but NCCL's or CUDA's headers are not under {} (set CFKIT_NVIDIA_DIR); CUDA tensors will be reduced through host memory with Gloo",
            nvidia.display()
        );
        None
    }
}
