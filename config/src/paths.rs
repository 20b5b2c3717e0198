//! Paths in config files: relative to the file's directory, and normalised lexically, so that a
//! config records (and hashes) `data/train` however it was reached (`configs/../data/train` from
//! `configs/x.toml`, `configs/fashionshift/../../data/train` from `configs/fashionshift/x.toml`).
//! Lexical: `..` removes the component before it without asking the file system, as Python's
//! `os.path.normpath` does (through a symbolic link to a directory, `link/..` is not the
//! link's parent; configs that need that should use absolute paths).

use std::path::{Component, Path, PathBuf};

/// `path` without `.` components and with every `..` that follows a normal component removed
/// together with it; `.` when nothing is left.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// Resolves `path` in place: joined to `base` when relative, then normalised.
pub fn resolve(base: &Path, path: &mut PathBuf) {
    let joined = if path.is_relative() {
        base.join(&*path)
    } else {
        path.clone()
    };
    *path = normalize(&joined);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_removes_the_component_before_it() {
        let n = |s: &str| normalize(Path::new(s)).display().to_string();
        assert_eq!(n("configs/../data/x"), "data/x");
        assert_eq!(n("configs/fashionshift/../../data/x"), "data/x");
        assert_eq!(n("./a/./b/"), "a/b");
        assert_eq!(n("../a/../../b"), "../../b");
        assert_eq!(n("/../a"), "/a");
        assert_eq!(n("a/.."), ".");
        let mut p = PathBuf::from("../../assets/teacher");
        resolve(Path::new("configs/fashionshift"), &mut p);
        assert_eq!(p, PathBuf::from("assets/teacher"));
        let mut abs = PathBuf::from("/data/x");
        resolve(Path::new("configs"), &mut abs);
        assert_eq!(abs, PathBuf::from("/data/x"));
    }
}
