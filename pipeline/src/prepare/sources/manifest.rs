//! A CSV (`path,label` header) or Parquet (`path`, `label` columns) manifest of image files.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::Array;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::labels::LabelIndex;
use super::{read_class_list, Location, SourceItem, SourceListing};
use crate::error::{PipelineError, Result};

/// Labels as read from a manifest: names or integers ([`LabelIndex`]).
fn resolve_labels(
    raw: Vec<(String, String)>,
    class_list: Option<Vec<String>>,
    manifest: &Path,
    root: &Path,
) -> Result<SourceListing> {
    let index = LabelIndex::new(raw.iter().map(|(_, l)| l.as_str()), class_list);
    let mut items = Vec::with_capacity(raw.len());
    for (row, (path, label)) in raw.iter().enumerate() {
        let idx = index.get(label).map_err(|why| {
            PipelineError::Input(format!("'{}' row {}: {why}", manifest.display(), row + 1))
        })?;
        let p = Path::new(path);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            root.join(p)
        };
        items.push(SourceItem {
            id: path.replace('\\', "/"),
            location: Location::File(full),
            label: idx as i64,
        });
    }
    Ok(SourceListing {
        classes: index.into_classes(),
        items,
        problems: Vec::new(),
        description: format!("manifest:{}", manifest.display()),
    })
}

fn read_csv(path: &Path) -> Result<Vec<(String, String)>> {
    let mut rdr = csv::Reader::from_path(path)
        .map_err(|e| PipelineError::Input(format!("'{}': {e}", path.display())))?;
    let headers = rdr
        .headers()
        .map_err(|e| PipelineError::Input(format!("'{}': {e}", path.display())))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                PipelineError::Input(format!(
                    "'{}': header has no '{name}' column (found: {})",
                    path.display(),
                    headers.iter().collect::<Vec<_>>().join(", ")
                ))
            })
    };
    let (pi, li) = (col("path")?, col("label")?);
    let mut out = Vec::new();
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| {
            PipelineError::Input(format!("'{}' row {}: {e}", path.display(), row + 1))
        })?;
        match (rec.get(pi), rec.get(li)) {
            (Some(p), Some(l)) if !p.is_empty() => out.push((p.to_string(), l.to_string())),
            _ => {
                return Err(PipelineError::Input(format!(
                    "'{}' row {}: empty path or label",
                    path.display(),
                    row + 1
                )))
            }
        }
    }
    Ok(out)
}

fn read_parquet(path: &Path) -> Result<Vec<(String, String)>> {
    let bad = |m: String| PipelineError::Input(format!("'{}': {m}", path.display()));
    let file = File::open(path).map_err(|e| PipelineError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(e.to_string()))?
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let paths = batch
            .column_by_name("path")
            .ok_or_else(|| bad("no 'path' column".into()))?;
        let paths = paths
            .as_string_opt::<i32>()
            .ok_or_else(|| bad("column 'path' is not utf8".into()))?;
        let labels = batch
            .column_by_name("label")
            .ok_or_else(|| bad("no 'label' column".into()))?;
        for i in 0..batch.num_rows() {
            let label = if let Some(s) = labels.as_string_opt::<i32>() {
                s.value(i).to_string()
            } else if let Some(n) = labels.as_primitive_opt::<Int64Type>() {
                n.value(i).to_string()
            } else {
                return Err(bad(format!(
                    "column 'label' must be utf8 or int64, found {}",
                    labels.data_type()
                )));
            };
            if paths.is_null(i) || labels.is_null(i) {
                return Err(bad(format!("row {}: null path or label", i + 1)));
            }
            out.push((paths.value(i).to_string(), label));
        }
    }
    Ok(out)
}

/// A CSV (`path,label` header) or Parquet (`path`, `label` columns) manifest. Relative paths are
/// resolved against `root` (default: the manifest's directory). Labels are class names, or class
/// indices when every label is an integer.
pub fn list_manifest(
    manifest: &Path,
    root: Option<&Path>,
    class_list: Option<&Path>,
) -> Result<SourceListing> {
    let raw = match manifest.extension().and_then(|e| e.to_str()) {
        Some("csv") => read_csv(manifest)?,
        Some("parquet") => read_parquet(manifest)?,
        _ => {
            return Err(PipelineError::Input(format!(
                "'{}': a manifest must be .csv or .parquet",
                manifest.display()
            )))
        }
    };
    if raw.is_empty() {
        return Err(PipelineError::Input(format!(
            "'{}' lists no images",
            manifest.display()
        )));
    }
    let base = root
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.parent().unwrap_or(Path::new(".")).to_path_buf());
    let classes = class_list.map(read_class_list).transpose()?;
    resolve_labels(raw, classes, manifest, &base)
}
