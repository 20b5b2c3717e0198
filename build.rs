//! Links the `cfkit` binary against libtorch so it runs without LD_LIBRARY_PATH.
//!
//! torch-sys (links = "tch") exports the libtorch library directory as DEP_TCH_LIBTORCH_LIB; an
//! rpath to it finds libtorch_cpu.so at run time, and `--no-as-needed -ltorch` keeps libtorch.so
//! (which pulls in libtorch_cuda.so where present) so CUDA is visible on a GPU machine.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
}
