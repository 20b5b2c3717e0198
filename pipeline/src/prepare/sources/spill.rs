//! Images stored inside Parquet files, copied out once before decoding.
//!
//! A Parquet column chunk is compressed and encoded as a whole, so one row's bytes cannot be read
//! without decoding the rows before it; reading rows in `prepare`'s shuffled order would decode
//! each row group once per row. Instead the image bytes are streamed out in file order, one batch
//! at a time (memory bounded by a batch), into one spill file next to the output; decoding then
//! reads them by offset, in any order and in parallel, like files. The spill file is as large as
//! the images and is removed when `prepare` ends.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, StructArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::hf_parquet::{leaves, BATCH_ROWS};
use super::{Location, SourceItem};
use crate::error::{PipelineError, Result};

/// The spill file's name inside the spill directory.
const SPILL_FILE: &str = "images.bin";

/// Rewrites every [`Location::ParquetRow`] of `items` to where its bytes are: the spill file
/// `dir/images.bin` ([`Location::Spilled`]), the file its `path` names when its bytes are null
/// ([`Location::Referenced`], relative paths from the Parquet file's directory), or
/// [`Location::Unavailable`]. Returns whether anything was spilled (`dir` is created then).
pub(crate) fn spill_parquet_rows(items: &mut [SourceItem], dir: &Path) -> Result<bool> {
    let mut by_file: HashMap<Arc<Path>, Vec<(u64, usize)>> = HashMap::new();
    let mut order: Vec<Arc<Path>> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        if let Location::ParquetRow { file, row, .. } = &it.location {
            let e = by_file.entry(file.clone()).or_insert_with(|| {
                order.push(file.clone());
                Vec::new()
            });
            e.push((*row, i));
        }
    }
    if order.is_empty() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
    let spill_path: Arc<Path> = Arc::from(dir.join(SPILL_FILE).as_path());
    let f = File::create(&spill_path).map_err(|e| PipelineError::io(spill_path.as_ref(), e))?;
    let mut spill = Spill {
        out: BufWriter::with_capacity(1 << 20, f),
        path: spill_path,
        at: 0,
    };
    for file in order {
        let mut wanted = by_file.remove(&file).unwrap_or_default();
        wanted.sort_unstable();
        spill.file(&file, &wanted, items)?;
    }
    spill
        .out
        .flush()
        .map_err(|e| PipelineError::io(spill.path.as_ref(), e))?;
    Ok(true)
}

struct Spill {
    out: BufWriter<File>,
    path: Arc<Path>,
    at: u64,
}

impl Spill {
    /// Streams `file`'s image column and spills the rows in `wanted` ((row, item index), sorted).
    fn file(
        &mut self,
        file: &Arc<Path>,
        wanted: &[(u64, usize)],
        items: &mut [SourceItem],
    ) -> Result<()> {
        let bad = |m: String| PipelineError::Input(format!("'{}': {m}", file.display()));
        let column = match &items[wanted[0].1].location {
            Location::ParquetRow { column, .. } => column.clone(),
            _ => unreachable!("only ParquetRow items are wanted"),
        };
        let f = File::open(file).map_err(|e| PipelineError::io(file.as_ref(), e))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| bad(e.to_string()))?;
        let mask = ProjectionMask::leaves(
            builder.parquet_schema(),
            leaves(
                builder.parquet_schema(),
                &[&[&column, "bytes"], &[&column, "path"]],
            ),
        );
        let reader = builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let base = file.parent().unwrap_or(Path::new("."));
        let (mut first_row, mut next) = (0u64, 0usize);
        let mut damage: Option<String> = None;
        for batch in reader {
            // A damaged page loses the rows from there on (quarantined), not the run.
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    damage = Some(format!(
                        "the file is unreadable from row {first_row} on: {e}"
                    ));
                    break;
                }
            };
            let n = batch.num_rows() as u64;
            let image = batch
                .column_by_name(&column)
                .and_then(|c| c.as_struct_opt())
                .ok_or_else(|| bad(format!("column '{column}' is not a struct")))?;
            while next < wanted.len() && wanted[next].0 < first_row + n {
                let (row, item) = wanted[next];
                items[item].location =
                    self.row(image, (row - first_row) as usize, file, row, base)?;
                next += 1;
            }
            first_row += n;
            if next == wanted.len() {
                break;
            }
        }
        for &(row, item) in &wanted[next..] {
            items[item].location = Location::Unavailable {
                file: file.clone(),
                row,
                reason: damage.clone().unwrap_or_else(|| {
                    format!("row {row} is past the file's last row ({first_row} rows)")
                }),
            };
        }
        Ok(())
    }

    fn row(
        &mut self,
        image: &StructArray,
        i: usize,
        file: &Arc<Path>,
        row: u64,
        base: &Path,
    ) -> Result<Location> {
        let bytes: Option<&[u8]> = image.column_by_name("bytes").and_then(|b| {
            if b.is_null(i) || image.is_null(i) {
                None
            } else if let Some(b) = b.as_binary_opt::<i32>() {
                Some(b.value(i))
            } else {
                b.as_binary_opt::<i64>().map(|b| b.value(i))
            }
        });
        let path: Option<&str> = image.column_by_name("path").and_then(|p| {
            if p.is_null(i) || image.is_null(i) {
                None
            } else if let Some(p) = p.as_string_opt::<i32>() {
                Some(p.value(i))
            } else {
                p.as_string_opt::<i64>().map(|p| p.value(i))
            }
        });
        Ok(match (bytes, path) {
            (Some(b), _) => {
                self.out
                    .write_all(b)
                    .map_err(|e| PipelineError::io(self.path.as_ref(), e))?;
                let loc = Location::Spilled {
                    file: file.clone(),
                    row,
                    spill: self.path.clone(),
                    offset: self.at,
                    len: b.len() as u64,
                };
                self.at += b.len() as u64;
                loc
            }
            (None, Some(p)) if !p.is_empty() => Location::Referenced {
                file: file.clone(),
                row,
                target: base.join(p),
            },
            _ => Location::Unavailable {
                file: file.clone(),
                row,
                reason: "the image is null (no bytes and no path)".into(),
            },
        })
    }
}
