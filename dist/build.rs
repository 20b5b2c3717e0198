//! Compiles `src/shim.cpp` — a C API over libtorch's c10d (`TCPStore`, `ProcessGroupGloo`) —
//! against the headers of the libtorch that torch-sys links (`DEP_TCH_LIBTORCH_LIB/../include`).
//! The torch wheel ships c10d's headers and its Gloo implementation (inside libtorch_cpu) but not
//! Gloo's own headers, which `ProcessGroupGloo.hpp` includes: they come from Debian's
//! `libgloo-dev` (/usr/include/gloo; `CFKIT_GLOO_INCLUDE` names another directory). Without them
//! the shim is not built and `ProcessGroup::init` says so (cfg `cfkit_no_gloo`).
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/shim.cpp");
    println!("cargo:rerun-if-env-changed=CFKIT_GLOO_INCLUDE");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
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
    let (Ok(lib), true) = (torch_lib, gloo.join("gloo/config.h").is_file()) else {
        println!(
            "cargo:warning=cfkit-dist: Gloo headers not found under {} (apt-get install libgloo-dev); distributed training is unavailable in this build",
            gloo.display()
        );
        println!("cargo:rustc-cfg=cfkit_no_gloo");
        return;
    };
    let include = lib.join("../include");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("src/shim.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include(&gloo)
        .define("USE_C10D_GLOO", None)
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .flag_if_supported("-w")
        .opt_level(1)
        .compile("cfkit_dist_shim");
}
