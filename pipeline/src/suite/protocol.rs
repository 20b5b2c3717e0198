//! The ImageNet evaluation protocol, embedded from `assets/imagenet/` (written by
//! `cfkit_tools.assets.imagenet`; sources in `assets/imagenet/SOURCES.md`): the 1000 wnids in
//! the standard order, CLIP's class names, the 200-class subsets of ImageNet-R and -A, the
//! ObjectNet -> ImageNet mapping and, per set, its folder convention, border crop and size.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{PipelineError, Result};

const WNIDS: &str = include_str!("../../../assets/imagenet/wnids.txt");
const CLASSNAMES: &str = include_str!("../../../assets/imagenet/classnames.txt");
const PROTOCOL: &str = include_str!("../../../assets/imagenet/protocol.json");
const R_WNIDS: &str = include_str!("../../../assets/imagenet/imagenet_r_wnids.txt");
const A_WNIDS: &str = include_str!("../../../assets/imagenet/imagenet_a_wnids.txt");
const OBJECTNET: &str = include_str!("../../../assets/imagenet/objectnet_to_imagenet.json");

/// How a set names its class folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Folders {
    /// ImageNet wnids (`n01440764`): ImageNet val, -Sketch, -R, -A.
    Wnid,
    /// Decimal class indices `0`..`999` (ImageNet-V2); the label is the number, not the
    /// folder's sorted position.
    Index,
    /// ObjectNet's own folder names; only the mapped ones are scored.
    Objectnet,
}

#[derive(Debug, Clone, Deserialize)]
struct SubsetRef {
    file: String,
}

/// One evaluation set of the suite.
#[derive(Debug, Clone, Deserialize)]
pub struct SetProtocol {
    /// ID (the fine-tuning distribution) or one of the OOD shifts.
    pub id: bool,
    pub folders: Folders,
    /// Directory names (relative to the suite root) the set is commonly found under.
    pub dir_names: Vec<String>,
    /// File of the class subset the logits are restricted to (R, A), if any.
    class_subset: Option<SubsetRef>,
    /// Pixels cropped from every side before preprocessing (ObjectNet's border).
    pub border_crop_px: u32,
    /// Images in the standard release.
    pub num_images: usize,
}

#[derive(Debug, Deserialize)]
struct ProtocolFile {
    sets: BTreeMap<String, SetProtocol>,
}

#[derive(Debug, Deserialize)]
struct ObjectnetClass {
    /// ObjectNet's own name of the class (`folder_to_objectnet_label.json`), e.g. "Alarm clock".
    label: String,
    imagenet: Vec<i64>,
}

#[derive(Debug, Deserialize)]
struct ObjectnetFile {
    classes: BTreeMap<String, ObjectnetClass>,
}

/// The whole protocol, parsed and cross-checked.
#[derive(Debug, Clone)]
pub struct ImagenetProtocol {
    /// Line i: the wnid of class i.
    pub wnids: Vec<String>,
    /// Line i: CLIP's name of class i (zero-shot prompts).
    pub classnames: Vec<String>,
    /// Sets in the paper's column order: ImageNet, -V2, -R, -Sketch, ObjectNet, -A.
    pub sets: Vec<(String, SetProtocol)>,
    subsets: BTreeMap<String, Vec<String>>,
    /// ObjectNet folder -> ImageNet class indices (sorted by folder).
    pub objectnet: BTreeMap<String, Vec<i64>>,
    /// ObjectNet folder -> ObjectNet's name of the class.
    pub objectnet_labels: BTreeMap<String, String>,
}

/// Column order of the paper's tables.
pub const SET_ORDER: [&str; 6] = [
    "imagenet",
    "imagenet-v2",
    "imagenet-r",
    "imagenet-sketch",
    "objectnet",
    "imagenet-a",
];

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

impl ImagenetProtocol {
    /// The embedded protocol (the assets are checked at build time by the unit test below and
    /// at generation time by their script; a failure here is a packaging bug).
    pub fn load() -> Result<Self> {
        let bad = |what: &str, e: String| {
            PipelineError::Input(format!("embedded ImageNet protocol ({what}): {e}"))
        };
        let file: ProtocolFile =
            serde_json::from_str(PROTOCOL).map_err(|e| bad("protocol.json", e.to_string()))?;
        let on: ObjectnetFile = serde_json::from_str(OBJECTNET)
            .map_err(|e| bad("objectnet_to_imagenet.json", e.to_string()))?;
        let mut sets = Vec::new();
        for name in SET_ORDER {
            let set = file
                .sets
                .get(name)
                .cloned()
                .ok_or_else(|| bad("protocol.json", format!("no entry for set '{name}'")))?;
            sets.push((name.to_string(), set));
        }
        let subsets = BTreeMap::from([
            ("imagenet_r_wnids.txt".to_string(), lines(R_WNIDS)),
            ("imagenet_a_wnids.txt".to_string(), lines(A_WNIDS)),
        ]);
        let p = ImagenetProtocol {
            wnids: lines(WNIDS),
            classnames: CLASSNAMES.lines().map(String::from).collect(),
            sets,
            subsets,
            objectnet_labels: on
                .classes
                .iter()
                .map(|(k, v)| (k.clone(), v.label.clone()))
                .collect(),
            objectnet: on
                .classes
                .into_iter()
                .map(|(k, v)| (k, v.imagenet))
                .collect(),
        };
        if p.wnids.len() != 1000 || p.classnames.len() != 1000 {
            return Err(bad("wnids/classnames", "expected 1000 lines each".into()));
        }
        Ok(p)
    }

    /// Checks that a model scores the suite's classes: 1000 of them, and when they are named by
    /// wnid, in the standard (sorted) order — the suite scores class i as the i-th wnid of
    /// assets/imagenet/wnids.txt. `model` names the checkpoint in the error.
    pub fn check_model_classes(&self, model: &Path, classes: &[String]) -> Result<()> {
        if classes.len() != self.wnids.len() {
            return Err(PipelineError::Input(format!(
                "checkpoint '{}' has a {}-class head; the imagenet suite scores the {} ImageNet classes in the standard (sorted wnid) order (build one with `cfkit zeroshot-head --classes assets/imagenet/wnids.txt --names assets/imagenet/classnames.txt`)",
                model.display(),
                classes.len(),
                self.wnids.len()
            )));
        }
        let looks_like_wnids = classes.iter().all(|c| {
            c.len() == 9 && c.starts_with('n') && c[1..].bytes().all(|b| b.is_ascii_digit())
        });
        if looks_like_wnids && classes != self.wnids.as_slice() {
            return Err(PipelineError::Input(format!(
                "checkpoint '{}' names its classes by wnid but not in the standard (sorted) order; the suite scores class i as the i-th wnid of assets/imagenet/wnids.txt",
                model.display()
            )));
        }
        Ok(())
    }

    /// The set named `name`.
    pub fn set(&self, name: &str) -> Result<&SetProtocol> {
        self.sets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .ok_or_else(|| {
                PipelineError::Input(format!(
                    "unknown set '{name}' (the imagenet suite has {})",
                    SET_ORDER.join(", ")
                ))
            })
    }

    /// The wnids a set's folders may hold: its class subset, else all 1000.
    pub(crate) fn set_wnids(&self, set: &SetProtocol) -> &[String] {
        match &set.class_subset {
            Some(s) if s.file.ends_with(".txt") => self
                .subsets
                .get(&s.file)
                .map_or(&self.wnids[..], |v| &v[..]),
            _ => &self.wnids,
        }
    }

    /// Index of `wnid` in the standard order.
    pub fn index_of(&self, wnid: &str) -> Option<i64> {
        self.wnids
            .binary_search_by(|w| w.as_str().cmp(wnid))
            .ok()
            .map(|i| i as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_assets_are_consistent() {
        let p = ImagenetProtocol::load().unwrap();
        assert!(p.wnids.windows(2).all(|w| w[0] < w[1]), "wnids sorted");
        assert_eq!(p.index_of("n01440764"), Some(0));
        assert_eq!(p.index_of("n15075141"), Some(999));
        assert_eq!(p.classnames[0], "tench");
        for name in ["imagenet-r", "imagenet-a"] {
            let w = p.set_wnids(p.set(name).unwrap());
            assert_eq!(w.len(), 200, "{name}");
            assert!(w.iter().all(|w| p.index_of(w).is_some()), "{name}");
        }
        assert_eq!(p.set_wnids(p.set("imagenet-sketch").unwrap()).len(), 1000);
        assert_eq!(p.objectnet.len(), 113);
        assert_eq!(p.objectnet_labels["alarm_clock"], "Alarm clock");
        let mut union: Vec<i64> = p.objectnet.values().flatten().copied().collect();
        union.sort_unstable();
        union.dedup();
        assert_eq!(union.len(), 125);
        assert!(union.iter().all(|&i| (0..1000).contains(&i)));
        assert_eq!(p.set("objectnet").unwrap().border_crop_px, 2);
        assert_eq!(p.set("imagenet-v2").unwrap().folders, Folders::Index);
        assert!(p.set("imagenet").unwrap().id);
        assert!(p.set("imagenet-x").is_err());
    }
}
