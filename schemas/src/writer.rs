//! Writes one shard, in the shape of parquet's `ArrowWriter` (try_new / write / close).
//!
//! Image bytes (every `image.bytes` leaf, nested ones included) are stored uncompressed, PLAIN,
//! without dictionary or statistics: they are PNG already, and statistics of binary blobs are
//! useless. Everything else is zstd. Row groups are cut when the Arrow (uncompressed) size of the
//! data written since the last cut reaches `row_group_bytes`. The file is written under
//! `<name>.tmp`, synced and renamed when `close` succeeds, so a crash never leaves a partial
//! shard under its real name.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SchemaError};
use crate::fields::{IMAGE, IMAGE_BYTES};
use crate::layout::TMP_SUFFIX;

/// Default row-group size: about 100 MB of uncompressed data (DESIGN §4).
pub const DEFAULT_ROW_GROUP_BYTES: usize = 100 * 1024 * 1024;

/// Knobs of the shard writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Uncompressed bytes per row group.
    pub row_group_bytes: usize,
    /// zstd level of the non-image columns (zstd's own default is 3).
    pub zstd_level: i32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            row_group_bytes: DEFAULT_ROW_GROUP_BYTES,
            zstd_level: 3,
        }
    }
}

/// What a closed shard is, as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardSummary {
    /// Path relative to the output directory, e.g. `data/train-00000-of-00004.parquet`.
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    pub blake3: String,
    pub row_groups: usize,
}

/// Writes one shard.
pub struct ShardWriter {
    out_dir: PathBuf,
    relpath: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
    rows: u64,
    group_bytes: usize,
    options: WriterOptions,
}

/// Writer properties for `schema`: see the module docs.
pub(crate) fn writer_properties(
    schema: &SchemaRef,
    options: &WriterOptions,
    kv: Vec<KeyValue>,
) -> Result<WriterProperties> {
    let level =
        ZstdLevel::try_new(options.zstd_level).map_err(|e| SchemaError::Record(e.to_string()))?;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None)
        .set_key_value_metadata(Some(kv));
    let descr = ArrowSchemaConverter::new()
        .convert(schema)
        .map_err(|e| SchemaError::Record(e.to_string()))?;
    for col in descr.columns() {
        let parts = col.path().parts();
        let n = parts.len();
        if n >= 2 && parts[n - 1] == IMAGE_BYTES && parts[n - 2] == IMAGE {
            let path = ColumnPath::new(parts.to_vec());
            b = b
                .set_column_compression(path.clone(), Compression::UNCOMPRESSED)
                .set_column_encoding(path.clone(), Encoding::PLAIN)
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_statistics_enabled(path, EnabledStatistics::None);
        }
    }
    Ok(b.build())
}

impl ShardWriter {
    /// Starts `out_dir/relpath` (written as `relpath.tmp` until closed). The schema's metadata is
    /// also written as plain Parquet key-value pairs.
    pub fn try_new(
        out_dir: &Path,
        relpath: &Path,
        schema: SchemaRef,
        options: WriterOptions,
    ) -> Result<Self> {
        let final_path = out_dir.join(relpath);
        let tmp = PathBuf::from(format!("{}{TMP_SUFFIX}", final_path.display()));
        if let Some(parent) = final_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| SchemaError::io(parent, e))?;
        }
        let file = File::create(&tmp).map_err(|e| SchemaError::io(&tmp, e))?;
        let mut kv: Vec<KeyValue> = schema
            .metadata()
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        kv.sort_by(|a, b| a.key.cmp(&b.key));
        let props = writer_properties(&schema, &options, kv)?;
        let writer = ArrowWriter::try_new(BufWriter::new(file), schema, Some(props))
            .map_err(|e| SchemaError::parquet(&tmp, e))?;
        Ok(ShardWriter {
            out_dir: out_dir.to_path_buf(),
            relpath: relpath.to_path_buf(),
            tmp,
            writer,
            rows: 0,
            group_bytes: 0,
            options,
        })
    }

    /// Appends a batch; cuts a row group once enough uncompressed data has accumulated.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer
            .write(batch)
            .map_err(|e| SchemaError::parquet(&self.tmp, e))?;
        self.rows += batch.num_rows() as u64;
        self.group_bytes += batch.get_array_memory_size();
        if self.group_bytes >= self.options.row_group_bytes {
            self.writer
                .flush()
                .map_err(|e| SchemaError::parquet(&self.tmp, e))?;
            self.group_bytes = 0;
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Finishes the file, syncs it, renames it into place and returns its summary.
    pub fn close(self) -> Result<ShardSummary> {
        let ShardWriter {
            out_dir,
            relpath,
            tmp,
            writer,
            rows,
            ..
        } = self;
        let meta = writer.close().map_err(|e| SchemaError::parquet(&tmp, e))?;
        let file = File::open(&tmp).map_err(|e| SchemaError::io(&tmp, e))?;
        file.sync_all().map_err(|e| SchemaError::io(&tmp, e))?;
        let (bytes, blake3) = hash_file(&tmp)?;
        let final_path = out_dir.join(&relpath);
        std::fs::rename(&tmp, &final_path).map_err(|e| SchemaError::io(&final_path, e))?;
        if let Some(parent) = final_path.parent() {
            // Make the rename itself durable.
            if let Ok(d) = File::open(parent) {
                let _ = d.sync_all();
            }
        }
        Ok(ShardSummary {
            file: relpath.to_string_lossy().replace('\\', "/"),
            rows,
            bytes,
            blake3,
            row_groups: meta.num_row_groups(),
        })
    }
}

/// (size, blake3 hex) of a file, streamed.
pub(crate) fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut f = File::open(path).map_err(|e| SchemaError::io(path, e))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| SchemaError::io(path, e))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((total, hasher.finalize().to_hex().to_string()))
}
