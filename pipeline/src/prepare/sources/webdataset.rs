//! WebDataset tar shards (img2dataset's output; timm's and clip_benchmark's copies of ImageNet and
//! its test sets): members grouped into samples by key as the `webdataset` package groups them,
//! the image chosen by extension, the label read from a member (`.cls`) or a JSON field.
//!
//! Grouping (webdataset's `base_plus_ext` + `group_by_keys`): a member's key is its path up to the
//! first dot of its file name, the rest is its extension (lower-cased); consecutive members with
//! one key form a sample; names without a dot, hidden names and `__…__` names are skipped.
//! Samples never span shards. Only headers and label members are read while listing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::clip_benchmark::{check_nshards, find_classnames, read_names};
use super::files::{expand_inputs, short_names};
use super::labels::LabelIndex;
use super::tar::{scan, TarMember};
use super::{
    nothing_usable, read_class_list, show_inputs, ListingProblem, Location, SourceItem,
    SourceListing,
};
use crate::error::{PipelineError, Result};

/// Image members by preference when a sample has several: clip_benchmark's order (webp, png, jpg,
/// jpeg), then the other extensions webdataset decodes as images that cfkit reads.
const IMAGE_EXTENSIONS: [&str; 14] = [
    "webp", "png", "jpg", "jpeg", "jpe", "jfif", "bmp", "gif", "tif", "tiff", "ppm", "pgm", "pbm",
    "pnm",
];
/// A label member larger than this is not a label.
const MAX_LABEL_BYTES: u64 = 1 << 16;

/// Where a sample's label is.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WdsLabel {
    /// The text of the member with this extension (`cls`: an integer; or a class name).
    Member(String),
    /// A field of the member with this extension, parsed as JSON (`json:label`).
    JsonField { member: String, field: String },
}

impl std::str::FromStr for WdsLabel {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || {
            format!(
                "'{s}': expected a member extension (cls) or <extension>:<json field> (json:label)"
            )
        };
        match s.split_once(':') {
            Some((m, f)) if !m.is_empty() && !f.is_empty() => Ok(WdsLabel::JsonField {
                member: m.to_ascii_lowercase(),
                field: f.to_string(),
            }),
            None if !s.is_empty() && !s.contains('/') => {
                Ok(WdsLabel::Member(s.to_ascii_lowercase()))
            }
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for WdsLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WdsLabel::Member(m) => write!(f, "{m}"),
            WdsLabel::JsonField { member, field } => write!(f, "{member}:{field}"),
        }
    }
}

/// webdataset's split of a member name into (key, extension).
pub(crate) fn key_and_extension(name: &str) -> Option<(&str, String)> {
    let base_start = name.rfind('/').map_or(0, |i| i + 1);
    let base = &name[base_start..];
    if base.starts_with('.') {
        return None;
    }
    let dot = base.find('.')?;
    if dot == 0 {
        return None;
    }
    let ext = &base[dot + 1..];
    Some((&name[..base_start + dot], ext.to_ascii_lowercase()))
}

/// webdataset skips metadata members such as `__key__` and `__index__/…`.
fn is_meta(name: &str) -> bool {
    let top = name.split('/').next().unwrap_or(name);
    top.len() > 4 && top.starts_with("__") && top.ends_with("__")
}

/// One sample as listed: its id, image member and raw label (or why it has none).
struct Sample {
    id: String,
    container: Arc<Path>,
    image: TarMember,
    label: std::result::Result<String, String>,
}

/// Where a WebDataset listing's class names come from.
#[derive(Debug, Clone, Copy)]
pub enum WdsClasses<'a> {
    /// A class-list file (`--classes`): labels are indices into it, or its names; a
    /// `classnames.txt` of the shards must have as many lines.
    File(&'a Path),
    /// A `classnames.txt` next to the shards or one level up (clip_benchmark's layout; labels
    /// are indices into it), else the labels themselves (integers as indices, names sorted).
    Found,
    /// The labels themselves, whatever files lie beside.
    Labels,
}

/// Lists the samples of the tar shards `inputs` names (files, directories of `.tar` files,
/// brace patterns). Ids are `<shard>/<key>`; classes as `classes` says.
pub fn list_webdataset(
    inputs: &[PathBuf],
    label: &WdsLabel,
    classes: WdsClasses,
) -> Result<SourceListing> {
    let files = expand_inputs(inputs, "tar")?;
    check_nshards(inputs, &files)?;
    let mut problems = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    for (file, short) in files.iter().zip(short_names(&files)) {
        refuse_compressed(file)?;
        let scanned = scan(file).map_err(|e| PipelineError::io(file, e))?;
        problems.extend(scanned.problems.into_iter().map(|reason| ListingProblem {
            path: file.clone(),
            reason,
        }));
        let shard = Shard {
            path: Arc::from(file.as_path()),
            file: std::fs::File::open(file).map_err(|e| PipelineError::io(file, e))?,
            short,
        };
        shard.samples(scanned.members, label, &mut samples, &mut problems);
    }
    let found = match classes {
        WdsClasses::Labels => None,
        _ => find_classnames(&files),
    };
    let (names_file, index) = match (classes, found) {
        (WdsClasses::File(p), found) => {
            let own = match &found {
                Some(f) => Some((read_names(f)?, format!("'{}'", f.display()))),
                None => None,
            };
            let own = own.as_ref().map(|(n, s)| (n.as_slice(), s.clone()));
            let index =
                LabelIndex::renaming(read_class_list(p)?, p, own).map_err(PipelineError::Input)?;
            (Some(p.to_path_buf()), index)
        }
        (_, Some(f)) => {
            let names = read_names(&f)?;
            if let Some(dup) = names
                .iter()
                .enumerate()
                .find(|(i, n)| names[..*i].contains(n))
            {
                return Err(PipelineError::Input(format!(
                    "'{}' names two classes '{}' (clip_benchmark's ImageNet names do: CLIP's list has 'missile' and 'sunglasses' twice); name the classes with --classes (e.g. assets/imagenet/wnids.txt, same order)",
                    f.display(),
                    dup.1
                )));
            }
            (Some(f), LabelIndex::with_classes(names, true))
        }
        (_, None) => (
            None,
            LabelIndex::new(samples.iter().filter_map(|s| s.label.as_deref().ok()), None),
        ),
    };
    let mut items = Vec::with_capacity(samples.len());
    for s in samples {
        match s.label.and_then(|l| index.get(&l)) {
            Ok(i) => items.push(SourceItem {
                id: s.id,
                location: Location::Member {
                    container: s.container,
                    offset: s.image.offset,
                    len: s.image.size,
                },
                label: i as i64,
            }),
            Err(why) => problems.push(ListingProblem {
                path: s.container.to_path_buf(),
                reason: format!("sample '{}': {why}", s.id),
            }),
        }
    }
    if items.is_empty() {
        return Err(nothing_usable(
            format!(
                "{} tar file(s) from {} hold no labelled image samples",
                files.len(),
                show_inputs(inputs)
            ),
            &problems,
        ));
    }
    Ok(SourceListing {
        classes: index.into_classes(),
        items,
        problems,
        description: format!(
            "webdataset:{} label={label}{}",
            show_inputs(inputs),
            names_file
                .map(|p| format!(" classes={}", p.display()))
                .unwrap_or_default()
        ),
    })
}

/// One tar file being grouped into samples.
struct Shard {
    path: Arc<Path>,
    /// Open once for the label members (one read each, at their offsets).
    file: std::fs::File,
    short: String,
}

impl Shard {
    /// Groups `members` into samples (consecutive members of one key).
    fn samples(
        &self,
        members: Vec<TarMember>,
        label: &WdsLabel,
        samples: &mut Vec<Sample>,
        problems: &mut Vec<ListingProblem>,
    ) {
        let mut run: Vec<(String, TarMember)> = Vec::new();
        let mut key: Option<String> = None;
        for m in members {
            if is_meta(&m.name) {
                continue;
            }
            let Some((k, ext)) = key_and_extension(&m.name) else {
                continue;
            };
            if key.as_deref() != Some(k) {
                if let Some(done) = key.take() {
                    self.sample(&done, std::mem::take(&mut run), label, samples, problems);
                }
                key = Some(k.to_string());
            }
            run.push((ext, m));
        }
        if let Some(done) = key {
            self.sample(&done, run, label, samples, problems);
        }
    }

    fn sample(
        &self,
        key: &str,
        members: Vec<(String, TarMember)>,
        label: &WdsLabel,
        samples: &mut Vec<Sample>,
        problems: &mut Vec<ListingProblem>,
    ) {
        let id = format!("{}/{key}", self.short);
        let mut by_ext: BTreeMap<String, TarMember> = BTreeMap::new();
        for (ext, m) in members {
            if by_ext.contains_key(&ext) {
                problems.push(ListingProblem {
                    path: self.path.to_path_buf(),
                    reason: format!(
                        "sample '{id}': a second '.{ext}' member ('{}'); the first is used",
                        m.name
                    ),
                });
                continue;
            }
            by_ext.insert(ext, m);
        }
        let Some(image) = IMAGE_EXTENSIONS.iter().find_map(|e| by_ext.get(*e)) else {
            problems.push(ListingProblem {
                path: self.path.to_path_buf(),
                reason: format!(
                    "sample '{id}': no image member (found: {}; images are .{})",
                    by_ext
                        .keys()
                        .map(|e| format!(".{e}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    IMAGE_EXTENSIONS.join(", .")
                ),
            });
            return;
        };
        samples.push(Sample {
            label: self.label(&by_ext, label),
            id,
            container: self.path.clone(),
            image: image.clone(),
        });
    }

    /// The raw label text of a sample, or why it has none.
    fn label(
        &self,
        members: &BTreeMap<String, TarMember>,
        label: &WdsLabel,
    ) -> std::result::Result<String, String> {
        let ext = match label {
            WdsLabel::Member(e) | WdsLabel::JsonField { member: e, .. } => e,
        };
        let m = members
            .get(ext)
            .ok_or_else(|| format!("no '.{ext}' member for the label"))?;
        if m.size > MAX_LABEL_BYTES {
            return Err(format!(
                "the '.{ext}' member has {} bytes, not a label",
                m.size
            ));
        }
        let mut bytes = vec![0u8; m.size as usize];
        std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut bytes, m.offset)
            .map_err(|e| format!("cannot read '.{ext}': {e}"))?;
        let text = String::from_utf8(bytes).map_err(|_| format!("'.{ext}' is not UTF-8 text"))?;
        match label {
            WdsLabel::Member(_) => Ok(text.trim().to_string()),
            WdsLabel::JsonField { field, .. } => {
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| format!("'.{ext}' is not JSON: {e}"))?;
                match v.get(field) {
                    Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(other) => Err(format!(
                        "'.{ext}' field '{field}' is {other}, expected a number or a string"
                    )),
                    None => Err(format!("'.{ext}' has no field '{field}'")),
                }
            }
        }
    }
}

/// Compressed tars cannot be read by seeking: refused with what to do.
fn refuse_compressed(file: &Path) -> Result<()> {
    let mut magic = [0u8; 6];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(file).map_err(|e| PipelineError::io(file, e))?;
        f.read(&mut magic).map_err(|e| PipelineError::io(file, e))?
    };
    let kind = match &magic[..n] {
        [0x1f, 0x8b, ..] => Some("gzip"),
        [b'B', b'Z', b'h', ..] => Some("bzip2"),
        [0xfd, b'7', b'z', b'X', b'Z', 0] => Some("xz"),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some("zstd"),
        _ => None,
    };
    match kind {
        Some(k) => Err(PipelineError::Input(format!(
            "'{}' is {k}-compressed; cfkit reads uncompressed tar shards (webdataset's and img2dataset's default) by seeking to each image — decompress it first",
            file.display()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_at_the_first_dot_of_the_file_name() {
        assert_eq!(
            key_and_extension("a/b/c.d.JPG"),
            Some(("a/b/c", "d.jpg".into()))
        );
        assert_eq!(
            key_and_extension("dir.v2/s001.cls"),
            Some(("dir.v2/s001", "cls".into()))
        );
        assert_eq!(key_and_extension("noext"), None);
        assert_eq!(key_and_extension("x/.hidden.jpg"), None);
        assert!(is_meta("__index__/x.json") && is_meta("__key__") && !is_meta("s0.cls"));
    }

    #[test]
    fn label_specs_parse() {
        assert_eq!(
            "cls".parse::<WdsLabel>(),
            Ok(WdsLabel::Member("cls".into()))
        );
        assert_eq!(
            "json:label".parse::<WdsLabel>(),
            Ok(WdsLabel::JsonField {
                member: "json".into(),
                field: "label".into()
            })
        );
        assert!("json:".parse::<WdsLabel>().is_err());
    }

    #[test]
    fn samples_group_consecutive_members_and_take_the_preferred_image() {
        use crate::prepare::sources::tar::tests::archive;
        let tar = archive(&[
            ("a.cls", b"1"),
            ("a.jpg", b"JPG"),
            ("a.webp", b"WEBP"),
            ("b.cls", b"0"),
            ("b.json", b"{}"),
            ("c.jpg", b"JPG"),
            ("__index__", b"x"),
            ("d.cls", b"7"),
            ("d.png", b"PNG"),
        ]);
        let dir = std::env::temp_dir().join(format!("cfkit-wds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("0.tar"), &tar).unwrap();
        let listing = list_webdataset(
            std::slice::from_ref(&dir),
            &WdsLabel::Member("cls".into()),
            WdsClasses::Found,
        )
        .unwrap();
        let ids: Vec<_> = listing.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["0.tar/a", "0.tar/d"]);
        assert_eq!(listing.classes.len(), 8, "integer labels 0..=7");
        assert_eq!(listing.items[0].read().unwrap(), b"WEBP", "webp before jpg");
        assert_eq!(listing.items[1].label, 7);
        let reasons: Vec<_> = listing.problems.iter().map(|p| p.reason.as_str()).collect();
        assert!(
            reasons[0].contains("'0.tar/b': no image member"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].contains("'0.tar/c': no '.cls' member"),
            "{reasons:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
