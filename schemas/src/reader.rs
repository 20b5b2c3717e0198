//! Reads one shard: checks the schema version, parses the dataset metadata, and yields record
//! batches per row group. Every error names the shard.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_array::{Array, Int64Array, StringArray};
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::ParquetMetaData;

use crate::cf_records::batch_to_counterfactuals;
use crate::error::{Result, SchemaError};
use crate::fields::{ID, LABEL, SCHEMA_VERSION};
use crate::metadata::{DatasetInfo, KEY_DATASET, KEY_SCHEMA_VERSION};
use crate::records::{batch_to_images, CounterfactualRecord, ImageRecord};
use crate::writer::hash_file;

/// An open shard.
pub struct ShardReader {
    path: PathBuf,
    file: File,
    meta: ArrowReaderMetadata,
    info: DatasetInfo,
}

impl std::fmt::Debug for ShardReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardReader")
            .field("path", &self.path)
            .finish()
    }
}

impl ShardReader {
    /// Opens a shard and checks that it is a cfkit shard of a supported schema version.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| SchemaError::io(path, e))?;
        let meta = ArrowReaderMetadata::load(&file, Default::default())
            .map_err(|e| SchemaError::parquet(path, e))?;
        let kv = meta.schema().metadata();
        let version = kv
            .get(KEY_SCHEMA_VERSION)
            .ok_or_else(|| SchemaError::Parquet {
                path: path.into(),
                message: format!(
                    "not a cfkit shard: metadata key '{KEY_SCHEMA_VERSION}' is missing"
                ),
            })?;
        if version.parse::<u32>().ok() != Some(SCHEMA_VERSION) {
            return Err(SchemaError::Version {
                path: path.into(),
                found: version.clone(),
                supported: SCHEMA_VERSION,
            });
        }
        let info_json = kv.get(KEY_DATASET).ok_or_else(|| SchemaError::Parquet {
            path: path.into(),
            message: format!("metadata key '{KEY_DATASET}' is missing"),
        })?;
        let info: DatasetInfo =
            serde_json::from_str(info_json).map_err(|e| SchemaError::Parquet {
                path: path.into(),
                message: format!("metadata '{KEY_DATASET}' is not valid: {e}"),
            })?;
        Ok(ShardReader {
            path: path.to_path_buf(),
            file,
            meta,
            info,
        })
    }

    /// Opens a shard after checking its size and blake3 against the manifest's record.
    pub fn open_verified(path: &Path, bytes: u64, blake3: &str) -> Result<Self> {
        let (size, hash) = hash_file(path)?;
        if size != bytes || hash != blake3 {
            return Err(SchemaError::Parquet {
                path: path.into(),
                message: format!(
                    "content does not match the manifest (size {size} vs {bytes}, blake3 {} vs {}): the file is corrupt or was changed",
                    &hash[..12],
                    &blake3[..blake3.len().min(12)]
                ),
            });
        }
        Self::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self) -> &DatasetInfo {
        &self.info
    }

    pub fn schema(&self) -> SchemaRef {
        self.meta.schema().clone()
    }

    pub fn parquet_metadata(&self) -> &ParquetMetaData {
        self.meta.metadata()
    }

    pub fn num_rows(&self) -> u64 {
        self.meta.metadata().file_metadata().num_rows() as u64
    }

    pub fn num_row_groups(&self) -> usize {
        self.meta.metadata().num_row_groups()
    }

    /// Rows of one row group, as batches of at most `batch_rows` rows.
    pub fn read_row_group(&self, index: usize, batch_rows: usize) -> Result<Vec<RecordBatch>> {
        self.read_group(index, batch_rows, None)
    }

    /// Rows of one row group without the top-level columns named in `skip` (names the shard
    /// does not have are ignored): Parquet reads only the other columns' pages, so a run that
    /// needs no stored variants never reads the `variants` column, most of a counterfactual
    /// shard's bytes.
    pub fn read_row_group_except(
        &self,
        index: usize,
        batch_rows: usize,
        skip: &[&str],
    ) -> Result<Vec<RecordBatch>> {
        let schema = self.schema();
        let keep = (0..schema.fields().len())
            .filter(|&i| !skip.contains(&schema.field(i).name().as_str()));
        let mask = ProjectionMask::roots(self.meta.metadata().file_metadata().schema_descr(), keep);
        self.read_group(index, batch_rows, Some(mask))
    }

    fn read_group(
        &self,
        index: usize,
        batch_rows: usize,
        projection: Option<ProjectionMask>,
    ) -> Result<Vec<RecordBatch>> {
        if index >= self.num_row_groups() {
            return Err(SchemaError::Parquet {
                path: self.path.clone(),
                message: format!(
                    "row group {index} does not exist ({} row groups)",
                    self.num_row_groups()
                ),
            });
        }
        let file = self
            .file
            .try_clone()
            .map_err(|e| SchemaError::io(&self.path, e))?;
        let mut builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone())
                .with_row_groups(vec![index])
                .with_batch_size(batch_rows.max(1));
        if let Some(mask) = projection {
            builder = builder.with_projection(mask);
        }
        let reader = builder
            .build()
            .map_err(|e| SchemaError::parquet(&self.path, e))?;
        reader
            .map(|b| {
                b.map_err(|e| SchemaError::parquet(&self.path, format!("row group {index}: {e}")))
            })
            .collect()
    }

    /// Rows per row group, from the footer.
    pub fn row_group_rows(&self) -> Vec<usize> {
        self.parquet_metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows() as usize)
            .collect()
    }

    /// The batches of one top-level column of one row group, read alone (no image bytes are
    /// decoded).
    fn read_column(&self, index: usize, name: &str) -> Result<Vec<arrow_array::ArrayRef>> {
        let root = self
            .schema()
            .index_of(name)
            .map_err(|_| SchemaError::parquet(&self.path, format!("column '{name}' is missing")))?;
        let file = self
            .file
            .try_clone()
            .map_err(|e| SchemaError::io(&self.path, e))?;
        let mask =
            ProjectionMask::roots(self.meta.metadata().file_metadata().schema_descr(), [root]);
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone())
            .with_row_groups(vec![index])
            .with_projection(mask)
            .with_batch_size(8192)
            .build()
            .map_err(|e| SchemaError::parquet(&self.path, e))?;
        let mut out = Vec::new();
        for b in reader {
            let b =
                b.map_err(|e| SchemaError::parquet(&self.path, format!("row group {index}: {e}")))?;
            if b.column(0).null_count() > 0 {
                return Err(SchemaError::parquet(
                    &self.path,
                    format!("column '{name}' has nulls"),
                ));
            }
            out.push(b.column(0).clone());
        }
        Ok(out)
    }

    /// The `label` column of one row group, read alone (no image bytes are decoded).
    pub fn read_labels(&self, index: usize) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        for col in self.read_column(index, LABEL)? {
            let col = col.as_any().downcast_ref::<Int64Array>().ok_or_else(|| {
                SchemaError::parquet(&self.path, format!("column '{LABEL}' is not int64"))
            })?;
            out.extend(col.values().iter().copied());
        }
        Ok(out)
    }

    /// The `id` column of one row group (each row's stable identity: the source file's path
    /// relative to the source root, in clean and counterfactual shards alike), read alone.
    pub fn read_ids(&self, index: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for col in self.read_column(index, ID)? {
            let col = col.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                SchemaError::parquet(&self.path, format!("column '{ID}' is not utf8"))
            })?;
            out.extend(col.iter().map(|v| v.unwrap_or_default().to_string()));
        }
        Ok(out)
    }

    /// Every row as image records (works for both shard kinds).
    pub fn read_images(&self) -> Result<Vec<ImageRecord>> {
        let mut out = Vec::with_capacity(self.num_rows() as usize);
        for g in 0..self.num_row_groups() {
            for b in self.read_row_group(g, 1024)? {
                out.extend(batch_to_images(&b, &self.path)?);
            }
        }
        Ok(out)
    }

    /// Every row of a counterfactual shard.
    pub fn read_counterfactuals(&self) -> Result<Vec<CounterfactualRecord>> {
        let mut out = Vec::with_capacity(self.num_rows() as usize);
        for g in 0..self.num_row_groups() {
            for b in self.read_row_group(g, 1024)? {
                out.extend(batch_to_counterfactuals(&b, &self.path)?);
            }
        }
        Ok(out)
    }
}
