//! Hugging Face datasets Parquet files (`datasets`' `to_parquet`, the Hub's `data/<split>-NNNNN-
//! of-MMMMM.parquet`): images in a struct column `{bytes: binary, path: string}` (the `Image`
//! feature), integer labels whose names are the `ClassLabel` feature's, both described by the
//! JSON under the file's `huggingface` metadata key (`{"info": {"features": {…}}}`).
//!
//! Listing reads only the label and the image's `path` field; the bytes are copied out once,
//! in file order, by [`super::spill`] before decoding. A row whose `bytes` are null and `path`
//! names a file (what `to_parquet` writes for images that were files) is read from that file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use parquet::schema::types::SchemaDescriptor;

use super::files::{expand_inputs, short_names};
use super::labels::LabelIndex;
use super::{
    nothing_usable, read_class_list, show_inputs, ListingProblem, Location, SourceItem,
    SourceListing,
};
use crate::error::{PipelineError, Result};

/// Rows per Arrow batch while listing and spilling.
pub(crate) const BATCH_ROWS: usize = 256;

/// Which columns hold the image and the label.
#[derive(Debug, Clone, Default)]
pub struct HfColumns {
    /// The image column [default: the first `Image` feature, else a struct with `bytes`].
    pub image: Option<String>,
    /// The label column [default: the first `ClassLabel` feature, else `label`, `labels` or
    /// `wnid`].
    pub label: Option<String>,
}

/// What one file's metadata says.
struct FileColumns {
    image: String,
    label: String,
    /// The `ClassLabel` feature's names, if the label column is one.
    names: Option<Vec<String>>,
}

/// The `huggingface` features JSON of a file: column name -> feature.
fn features(
    path: &Path,
    schema: &Schema,
    kv: Option<&Vec<parquet::file::metadata::KeyValue>>,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let text = schema.metadata().get("huggingface").cloned().or_else(|| {
        kv.and_then(|kv| kv.iter().find(|k| k.key == "huggingface"))
            .and_then(|k| k.value.clone())
    });
    let Some(text) = text else {
        return Ok(Default::default());
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        PipelineError::Input(format!(
            "'{}': metadata 'huggingface' is not JSON: {e}",
            path.display()
        ))
    })?;
    Ok(v.pointer("/info/features")
        .and_then(|f| f.as_object())
        .cloned()
        .unwrap_or_default())
}

fn feature_type(f: &serde_json::Value) -> Option<&str> {
    f.get("_type").and_then(|t| t.as_str())
}

fn columns_of(
    path: &Path,
    schema: &Schema,
    feats: &serde_json::Map<String, serde_json::Value>,
    wanted: &HfColumns,
) -> Result<FileColumns> {
    let present = || {
        schema
            .fields()
            .iter()
            .map(|f| format!("{} ({})", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let image = match &wanted.image {
        Some(c) => c.clone(),
        None => feats
            .iter()
            .find(|(_, f)| feature_type(f) == Some("Image"))
            .map(|(n, _)| n.clone())
            .or_else(|| {
                schema
                    .fields()
                    .iter()
                    .find(|f| matches!(f.data_type(), DataType::Struct(c) if c.iter().any(|c| c.name() == "bytes")))
                    .map(|f| f.name().clone())
            })
            .ok_or_else(|| {
                PipelineError::Input(format!(
                    "'{}': no image column (an Image feature, or a struct with a 'bytes' field); name it with --image-column (columns: {})",
                    path.display(),
                    present()
                ))
            })?,
    };
    let label = match &wanted.label {
        Some(c) => c.clone(),
        None => feats
            .iter()
            .find(|(_, f)| feature_type(f) == Some("ClassLabel"))
            .map(|(n, _)| n.clone())
            .or_else(|| {
                // `wnid`: ImageNet-R/-A copies on the Hub name classes by wnid (axiong/imagenet-r).
                ["label", "labels", "wnid"]
                    .into_iter()
                    .find(|n| schema.field_with_name(n).is_ok())
                    .map(str::to_string)
            })
            .ok_or_else(|| {
                PipelineError::Input(format!(
                    "'{}': no label column (a ClassLabel feature, or a column named 'label'); name it with --label-column (columns: {})",
                    path.display(),
                    present()
                ))
            })?,
    };
    for (what, col) in [("image", &image), ("label", &label)] {
        if schema.field_with_name(col).is_err() {
            return Err(PipelineError::Input(format!(
                "'{}': no {what} column '{col}' (columns: {})",
                path.display(),
                present()
            )));
        }
    }
    match schema.field_with_name(&image).map(|f| f.data_type().clone()) {
        Ok(DataType::Struct(c)) if c.iter().any(|c| c.name() == "bytes") => {}
        Ok(other) => {
            return Err(PipelineError::Input(format!(
                "'{}': image column '{image}' is {other}, expected a struct {{bytes: binary, path: string}} (the datasets Image feature)",
                path.display()
            )))
        }
        Err(_) => unreachable!("checked above"),
    }
    let names = feats.get(&label).and_then(|f| {
        (feature_type(f) == Some("ClassLabel")).then(|| {
            f.get("names").and_then(|n| n.as_array()).map(|n| {
                n.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
        })?
    });
    Ok(FileColumns {
        image,
        label,
        names,
    })
}

/// Leaf indices of the Parquet columns at `paths` (e.g. `["image", "path"]`).
pub(crate) fn leaves(schema: &SchemaDescriptor, paths: &[&[&str]]) -> Vec<usize> {
    schema
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| paths.iter().any(|p| c.path().parts() == *p))
        .map(|(i, _)| i)
        .collect()
}

/// Row `i` of a label column as text; `None` for null.
fn label_text(a: &ArrayRef, i: usize) -> std::result::Result<Option<String>, String> {
    if a.is_null(i) {
        return Ok(None);
    }
    macro_rules! ints {
        ($($t:ty),*) => {$(
            if let Some(p) = a.as_primitive_opt::<$t>() {
                return Ok(Some(p.value(i).to_string()));
            }
        )*};
    }
    ints!(Int64Type, Int32Type, Int16Type, Int8Type, UInt64Type, UInt32Type, UInt16Type, UInt8Type);
    if let Some(s) = a.as_string_opt::<i32>() {
        return Ok(Some(s.value(i).to_string()));
    }
    if let Some(s) = a.as_string_opt::<i64>() {
        return Ok(Some(s.value(i).to_string()));
    }
    Err(format!(
        "is {}, expected integers or strings",
        a.data_type()
    ))
}

/// One row as listed.
struct Row {
    id: String,
    file: Arc<Path>,
    row: u64,
    label: String,
}

/// Reads `file`'s label column into `rows` (problems for null and -1 labels).
fn read_labels(
    file: &Path,
    short: &str,
    builder: ParquetRecordBatchReaderBuilder<File>,
    label: &str,
    rows: &mut Vec<Row>,
    problems: &mut Vec<ListingProblem>,
) -> Result<()> {
    let bad = |m: String| PipelineError::Input(format!("'{}': {m}", file.display()));
    let mask = ProjectionMask::leaves(
        builder.parquet_schema(),
        leaves(builder.parquet_schema(), &[&[label]]),
    );
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let arc: Arc<Path> = Arc::from(file);
    let mut row = 0u64;
    for batch in reader {
        // A damaged page loses the rest of this file, not the run.
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                problems.push(ListingProblem {
                    path: file.to_path_buf(),
                    reason: format!(
                        "unreadable from row {row} on ({e}); the file's remaining rows are skipped"
                    ),
                });
                break;
            }
        };
        let labels = batch
            .column_by_name(label)
            .ok_or_else(|| bad(format!("no column '{}'", label)))?;
        for i in 0..batch.num_rows() {
            let id = format!("{short}:{row}");
            match label_text(labels, i).map_err(|e| bad(format!("label column '{}' {e}", label)))? {
                Some(l) if l.trim() == "-1" => problems.push(ListingProblem {
                    path: file.to_path_buf(),
                    reason: format!("row {row} ({id}): label -1 (no label, as in a test split)"),
                }),
                Some(label) => rows.push(Row {
                    id,
                    file: arc.clone(),
                    row,
                    label,
                }),
                None => problems.push(ListingProblem {
                    path: file.to_path_buf(),
                    reason: format!("row {row} ({id}): null label"),
                }),
            }
            row += 1;
        }
    }
    Ok(())
}

/// Lists the rows of the Parquet files `inputs` names (files, directories, brace patterns).
/// Ids are `<file>:<row>`. Classes: `class_list`, else the `ClassLabel` feature's names (the
/// same in every file), else the labels themselves (integers as indices, names sorted). A null
/// label, or HF's -1 (no label, as in ImageNet's test split), is a listing problem.
pub fn list_hf_parquet(
    inputs: &[PathBuf],
    columns: &HfColumns,
    class_list: Option<&Path>,
) -> Result<SourceListing> {
    let files = expand_inputs(inputs, "parquet")?;
    let mut problems = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut first: Option<(PathBuf, FileColumns)> = None;
    for (file, short) in files.iter().zip(short_names(&files)) {
        let bad = |m: String| PipelineError::Input(format!("'{}': {m}", file.display()));
        let f = File::open(file).map_err(|e| PipelineError::io(file, e))?;
        // A file without a readable footer (a cut download) loses its rows, not the run.
        let builder = match ParquetRecordBatchReaderBuilder::try_new(f) {
            Ok(b) => b,
            Err(e) => {
                problems.push(ListingProblem {
                    path: file.clone(),
                    reason: format!("not a readable Parquet file ({e}); its rows are skipped"),
                });
                continue;
            }
        };
        let feats = features(
            file,
            builder.schema(),
            builder.metadata().file_metadata().key_value_metadata(),
        )?;
        let cols = columns_of(file, builder.schema(), &feats, columns)?;
        if let Some((p, c)) = &first {
            if c.image != cols.image || c.label != cols.label || c.names != cols.names {
                return Err(bad(format!(
                    "its columns or class names differ from '{}' (image '{}' vs '{}', label '{}' vs '{}', {} vs {} class names); prepare one dataset's files together",
                    p.display(),
                    cols.image,
                    c.image,
                    cols.label,
                    c.label,
                    cols.names.as_ref().map_or(0, Vec::len),
                    c.names.as_ref().map_or(0, Vec::len)
                )));
            }
        }
        read_labels(file, &short, builder, &cols.label, &mut rows, &mut problems)?;
        if first.is_none() {
            first = Some((file.clone(), cols));
        }
    }
    let Some((_, cols)) = first else {
        return Err(nothing_usable(
            format!("none of the {} Parquet file(s) is readable", files.len()),
            &problems,
        ));
    };
    let index = match (class_list, cols.names.clone()) {
        (Some(p), names) => {
            let own = names
                .as_deref()
                .map(|n| (n, "the dataset's ClassLabel feature".to_string()));
            LabelIndex::renaming(read_class_list(p)?, p, own).map_err(PipelineError::Input)?
        }
        (None, Some(names)) => LabelIndex::with_classes(names, true),
        (None, None) => LabelIndex::new(rows.iter().map(|r| r.label.as_str()), None),
    };
    let column: Arc<str> = Arc::from(cols.image.as_str());
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        match index.get(&r.label) {
            Ok(i) => items.push(SourceItem {
                id: r.id,
                location: Location::ParquetRow {
                    file: r.file,
                    row: r.row,
                    column: column.clone(),
                },
                label: i as i64,
            }),
            Err(why) => problems.push(ListingProblem {
                path: r.file.to_path_buf(),
                reason: format!("row {} ({}): {why}", r.row, r.id),
            }),
        }
    }
    if items.is_empty() {
        return Err(nothing_usable(
            format!("{} Parquet file(s) hold no labelled rows", files.len()),
            &problems,
        ));
    }
    Ok(SourceListing {
        classes: index.into_classes(),
        items,
        problems,
        description: format!(
            "hf-parquet:{} image={} label={}{}",
            show_inputs(inputs),
            cols.image,
            cols.label,
            class_list
                .map(|p| format!(" classes={}", p.display()))
                .unwrap_or_default()
        ),
    })
}
