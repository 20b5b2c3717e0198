//! A Markdown description of the shard schemas, generated from the Arrow schemas themselves.
//! `schemas/SCHEMA.md` holds the committed copy; a test fails when the two drift apart.

use arrow_schema::{DataType, Field};

use crate::fields::{column_doc, nulls_allowed, SCHEMA_VERSION};
use crate::metadata::{
    shard_schema, CounterfactualDims, DatasetInfo, ShardKind, KEY_DATASET, KEY_HUGGINGFACE,
    KEY_SCHEMA_VERSION,
};

fn type_name(t: &DataType) -> String {
    match t {
        DataType::FixedSizeList(f, n) => format!(
            "fixed_size_list<{}>[{}]",
            type_name(f.data_type()),
            dim_name(*n)
        ),
        DataType::List(f) => format!("list<{}>", type_name(f.data_type())),
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: {}", f.name(), type_name(f.data_type())))
                .collect();
            format!("struct<{}>", inner.join(", "))
        }
        DataType::Utf8 => "string".into(),
        DataType::Binary => "binary".into(),
        other => other.to_string().to_lowercase(),
    }
}

// The example dimensions below stand for symbols in the description.
const P: i32 = 49;
const D: i32 = 512;
const C: i32 = 1000;
/// The stored image side of the ground-truth example (its mask has S×S entries).
const S: u32 = 16;

fn dim_name(n: i32) -> String {
    match n {
        P => "P".into(),
        D => "D".into(),
        C => "C".into(),
        n if n == (S * S) as i32 => "S×S".into(),
        other => other.to_string(),
    }
}

fn rows(out: &mut String, fields: &[std::sync::Arc<Field>], prefix: &str) {
    for f in fields {
        let name = format!("{prefix}{}", f.name());
        let doc = column_doc(f.name());
        out.push_str(&format!(
            "| `{name}` | `{}` | {} | {doc} |\n",
            type_name(f.data_type()),
            if nulls_allowed(f.name()) {
                "allowed"
            } else {
                "never"
            }
        ));
        if let DataType::List(inner) = f.data_type() {
            if let DataType::Struct(sub) = inner.data_type() {
                rows(out, sub, &format!("{name}[]."));
            }
        }
    }
}

/// The Markdown text of schemas/SCHEMA.md.
pub fn schema_markdown() -> String {
    let info = |kind| DatasetInfo {
        schema_version: SCHEMA_VERSION,
        kind,
        split: "train".into(),
        classes: (0..C).map(|i| format!("c{i}")).collect(),
        image_size: 224,
        preprocessing: String::new(),
        resize: Default::default(),
        source: String::new(),
        seed: None,
        config_hash: None,
        teacher: None,
        method: None,
        scene_truth: false,
    };
    let dims = CounterfactualDims {
        num_patches: P,
        feature_dim: D,
    };
    let mut out = format!(
        "# cfkit shard schemas, version {SCHEMA_VERSION}\n\n\
         Generated from `schemas/src` by `cargo test -p cfkit-schemas` (set `CFKIT_UPDATE_DOCS=1` to rewrite);\n\
         do not edit by hand. P = patches per image (row-major grid), D = teacher feature width,\n\
         C = number of classes. Top-level columns carry Arrow's nullable flag (Hugging Face `datasets`\n\
         applies Image and ClassLabel only to nullable fields); the `nulls` column says what cfkit\n\
         writes and its reader accepts.\n\n\
         Files: `OUT/data/<split>-NNNNN-of-MMMMM.parquet` and `OUT/manifest.json`; a counterfactual\n\
         build whose workers split a shard writes it as pieces of consecutive batches,\n\
         `<split>-NNNNN-of-MMMMM.bFFFFF-EEEEE.parquet` (its batches FFFFF to EEEEE, the end excluded), each listed in the\n\
         manifest; readers take the files the manifest lists.\n\n"
    );
    for (title, kind) in [
        ("Image shards", ShardKind::Images),
        ("Counterfactual shards", ShardKind::Counterfactuals),
    ] {
        let schema = shard_schema(&info(kind), Some(dims));
        out.push_str(&format!(
            "## {title}\n\n| column | Arrow type | nulls | meaning |\n|---|---|---|---|\n"
        ));
        rows(&mut out, schema.fields(), "");
        out.push('\n');
    }
    out.push_str(
        "## Generator ground truth (optional)\n\nDatasets whose `cfkit.dataset` says `scene_truth` \
         (FashionShift from `cfkit demo-data`) end every row, image or counterfactual, with two more \
         columns; datasets made from real files do not have them. S = the stored image side. They are \
         an addition within version 1: readers find columns by name, so readers that do not know \
         them ignore them.\n\n\
         | column | Arrow type | nulls | meaning |\n|---|---|---|---|\n",
    );
    let truth: Vec<std::sync::Arc<Field>> = crate::truth::truth_columns(S)
        .into_iter()
        .map(std::sync::Arc::new)
        .collect();
    rows(&mut out, &truth, "");
    out.push('\n');
    out.push_str(&format!(
        "## Metadata\n\nIn the Arrow schema metadata and as plain Parquet key-value pairs:\n\n\
         | key | value |\n|---|---|\n\
         | `{KEY_SCHEMA_VERSION}` | `{SCHEMA_VERSION}` |\n\
         | `{KEY_DATASET}` | JSON: schema_version, kind, split, classes, image_size, preprocessing, resize (left out when CLIP's: shortest side, bicubic), source, seed, config_hash, teacher, method, scene_truth |\n\
         | `{KEY_HUGGINGFACE}` | Hugging Face `datasets` features: `image` as Image, `label` as ClassLabel |\n\
         | `cfkit.kind`, `cfkit.split`, `cfkit.num_classes`, `cfkit.preprocessing`, `cfkit.seed`, `cfkit.config_hash`, `cfkit.teacher`, `cfkit.teacher_blake3`, `cfkit.method` | flat copies for SQL tools |\n\n\
         Image bytes columns (`image.bytes`, `variants[].image.bytes`): uncompressed, PLAIN, no dictionary, no\n\
         statistics. Other columns: zstd. Row groups of about 100 MB uncompressed.\n\n\
         Compact counterfactual datasets (`method.variant_pixels` = `compact` in `{KEY_DATASET}`; built\n\
         with `[counterfactuals] compact = true`): every `variants[].image.bytes` is empty. A variant is\n\
         its row's image with the patches of `mask` copied from its donors (`donor_ids`: none, one, or one\n\
         per patch), all rows of the same row group; each builder batch lies in one row group.\n"
    ));
    out
}

/// Checks a generated document against the file at `path` — the whole file, or with `markers`
/// `(begin, end)` the text between those two marker lines — and, with `update` (the tests pass
/// whether `CFKIT_UPDATE_DOCS` is set), rewrites it instead. The error names the file.
pub fn check_generated(
    path: &std::path::Path,
    markers: Option<(&str, &str)>,
    want: &str,
    update: bool,
) -> Result<(), String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (start, end) = match markers {
        None => (0, text.len()),
        Some((begin, end)) => {
            let start = text
                .find(begin)
                .ok_or_else(|| format!("'{}' has no line '{begin}'", path.display()))?
                + begin.len();
            let stop = text[start..]
                .find(end)
                .ok_or_else(|| format!("'{}' has no line '{end}'", path.display()))?
                + start;
            (start, stop)
        }
    };
    if text[start..end] == *want {
        return Ok(());
    }
    if update {
        let new = format!("{}{want}{}", &text[..start], &text[end..]);
        return std::fs::write(path, new).map_err(|e| format!("'{}': {e}", path.display()));
    }
    Err(format!(
        "'{}' is out of date with what generates it; rerun the test with CFKIT_UPDATE_DOCS=1 and commit it",
        path.display()
    ))
}
