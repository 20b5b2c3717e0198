//! Links the `cfkit` binary against libtorch so it runs without LD_LIBRARY_PATH, and gives the
//! trainer the git commit it was built from (recorded in every run's `run.json`).
//!
//! torch-sys (links = "tch") exports the libtorch library directory as DEP_TCH_LIBTORCH_LIB; an
//! rpath to it finds libtorch_cpu.so at run time, and `--no-as-needed -ltorch` keeps libtorch.so
//! (which pulls in libtorch_cuda.so where present) so CUDA is visible on a GPU machine.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
    if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("cfkit-trainer") {
        git_commit();
    }
}

/// Sets CFKIT_GIT_COMMIT to `git rev-parse HEAD` of the workspace ("unknown" outside a git
/// checkout), rerunning when HEAD or the branch it names moves (in a clone or a `git worktree`,
/// whose HEAD and refs live in different directories). Uncommitted edits are not seen.
fn git_commit() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(&manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let mut watch: Vec<String> = ["HEAD", "packed-refs"].map(String::from).to_vec();
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for name in &watch {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            let path = Path::new(&manifest).join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CFKIT_GIT_COMMIT={commit}");
}
