//! Rows of the shards as Rust structs, and their conversion to and from Arrow record batches.

use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int32Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, FixedSizeListArray, Float32Array, Int32Array,
    Int64Array, ListArray, RecordBatch, StringArray, StructArray, UInt64Array,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, SchemaRef};

use crate::error::{Result, SchemaError};
use crate::fields::*;
use crate::truth::{read_truth, truth_arrays, SceneTruth};

/// An image as stored: encoded bytes (PNG) and a path (file name hint for Arrow tools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    pub bytes: Vec<u8>,
    pub path: String,
}

/// One row of an image shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: String,
    pub label: i64,
    pub class_name: String,
    pub source_blake3: String,
    pub orig_width: i32,
    pub orig_height: i32,
    pub image: StoredImage,
    /// The generator's ground truth (datasets whose metadata says `scene_truth`).
    pub truth: Option<SceneTruth>,
}

/// One counterfactual variant of an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub variant: i32,
    pub strategy: String,
    pub mask: Vec<bool>,
    pub donor_ids: Vec<String>,
    pub seed: u64,
    pub image: StoredImage,
    pub teacher_feature: Vec<f32>,
}

/// One row of a counterfactual shard.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterfactualRecord {
    pub base: ImageRecord,
    pub teacher_feature: Vec<f32>,
    pub teacher_logits: Option<Vec<f32>>,
    pub cam: Vec<f32>,
    pub variants: Vec<Variant>,
}

fn arrow_err(e: arrow_schema::ArrowError) -> SchemaError {
    SchemaError::Record(e.to_string())
}

fn image_array(images: &[&StoredImage]) -> Result<ArrayRef> {
    let bytes = BinaryArray::from_iter_values(images.iter().map(|i| i.bytes.as_slice()));
    let paths = StringArray::from_iter_values(images.iter().map(|i| i.path.as_str()));
    let s = StructArray::try_new(image_fields(), vec![Arc::new(bytes), Arc::new(paths)], None)
        .map_err(arrow_err)?;
    Ok(Arc::new(s))
}

fn fixed_f32(rows: &[&[f32]], len: i32, what: &str, nulls: Option<Vec<bool>>) -> Result<ArrayRef> {
    let mut values = Vec::with_capacity(rows.len() * len as usize);
    for r in rows {
        if r.len() != len as usize {
            return Err(SchemaError::Record(format!(
                "{what} has {} values, the schema says {len}",
                r.len()
            )));
        }
        values.extend_from_slice(r);
    }
    let field = Arc::new(Field::new(ELEMENT, DataType::Float32, false));
    let nulls = nulls.map(NullBuffer::from);
    let a = FixedSizeListArray::try_new(field, len, Arc::new(Float32Array::from(values)), nulls)
        .map_err(arrow_err)?;
    Ok(Arc::new(a))
}

fn fixed_len(schema: &SchemaRef, name: &str) -> Result<i32> {
    match schema.field_with_name(name).map(|f| f.data_type()) {
        Ok(DataType::FixedSizeList(_, n)) => Ok(*n),
        _ => Err(SchemaError::Record(format!(
            "schema has no fixed-size column '{name}'"
        ))),
    }
}

fn base_columns(rows: &[&ImageRecord]) -> Result<Vec<ArrayRef>> {
    Ok(vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.id.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.label))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.class_name.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.source_blake3.as_str()),
        )),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|r| r.orig_width),
        )),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|r| r.orig_height),
        )),
        image_array(&rows.iter().map(|r| &r.image).collect::<Vec<_>>())?,
    ])
}

/// Image records -> a batch of `schema` (an image-shard schema).
pub fn images_to_batch(schema: &SchemaRef, rows: &[ImageRecord]) -> Result<RecordBatch> {
    let mut cols = base_columns(&rows.iter().collect::<Vec<_>>())?;
    cols.extend(truth_arrays(
        schema,
        &rows.iter().map(|r| r.truth.as_ref()).collect::<Vec<_>>(),
    )?);
    RecordBatch::try_new(schema.clone(), cols).map_err(arrow_err)
}

/// Counterfactual records -> a batch of `schema` (a counterfactual-shard schema).
pub fn counterfactuals_to_batch(
    schema: &SchemaRef,
    rows: &[CounterfactualRecord],
) -> Result<RecordBatch> {
    let d = fixed_len(schema, TEACHER_FEATURE)?;
    let c = fixed_len(schema, TEACHER_LOGITS)?;
    let p = fixed_len(schema, CAM)?;
    let mut cols = base_columns(&rows.iter().map(|r| &r.base).collect::<Vec<_>>())?;
    cols.push(fixed_f32(
        &rows
            .iter()
            .map(|r| r.teacher_feature.as_slice())
            .collect::<Vec<_>>(),
        d,
        TEACHER_FEATURE,
        None,
    )?);
    let zeros = vec![0f32; c as usize];
    let logits: Vec<&[f32]> = rows
        .iter()
        .map(|r| r.teacher_logits.as_deref().unwrap_or(&zeros))
        .collect();
    let valid: Vec<bool> = rows.iter().map(|r| r.teacher_logits.is_some()).collect();
    let nulls = if valid.iter().all(|v| *v) {
        None
    } else {
        Some(valid)
    };
    cols.push(fixed_f32(&logits, c, TEACHER_LOGITS, nulls)?);
    cols.push(fixed_f32(
        &rows.iter().map(|r| r.cam.as_slice()).collect::<Vec<_>>(),
        p,
        CAM,
        None,
    )?);

    let variants: Vec<&Variant> = rows.iter().flat_map(|r| r.variants.iter()).collect();
    let mut mask_values = Vec::with_capacity(variants.len() * p as usize);
    for v in &variants {
        if v.mask.len() != p as usize {
            return Err(SchemaError::Record(format!(
                "variant mask has {} patches, the schema says {p}",
                v.mask.len()
            )));
        }
        mask_values.extend_from_slice(&v.mask);
    }
    let mask = FixedSizeListArray::try_new(
        Arc::new(Field::new(ELEMENT, DataType::Boolean, false)),
        p,
        Arc::new(BooleanArray::from(mask_values)),
        None,
    )
    .map_err(arrow_err)?;
    let donor_values = StringArray::from_iter_values(
        variants
            .iter()
            .flat_map(|v| v.donor_ids.iter().map(String::as_str)),
    );
    let donors = ListArray::try_new(
        Arc::new(Field::new(ELEMENT, DataType::Utf8, false)),
        OffsetBuffer::from_lengths(variants.iter().map(|v| v.donor_ids.len())),
        Arc::new(donor_values),
        None,
    )
    .map_err(arrow_err)?;
    let vstruct = StructArray::try_new(
        variant_fields(p, d),
        vec![
            Arc::new(Int32Array::from_iter_values(
                variants.iter().map(|v| v.variant),
            )),
            Arc::new(StringArray::from_iter_values(
                variants.iter().map(|v| v.strategy.as_str()),
            )),
            Arc::new(mask),
            Arc::new(donors),
            Arc::new(UInt64Array::from_iter_values(
                variants.iter().map(|v| v.seed),
            )),
            image_array(&variants.iter().map(|v| &v.image).collect::<Vec<_>>())?,
            fixed_f32(
                &variants
                    .iter()
                    .map(|v| v.teacher_feature.as_slice())
                    .collect::<Vec<_>>(),
                d,
                "variant teacher_feature",
                None,
            )?,
        ],
        None,
    )
    .map_err(arrow_err)?;
    let list = ListArray::try_new(
        Arc::new(Field::new(
            ELEMENT,
            DataType::Struct(variant_fields(p, d)),
            false,
        )),
        OffsetBuffer::from_lengths(rows.iter().map(|r| r.variants.len())),
        Arc::new(vstruct),
        None,
    )
    .map_err(arrow_err)?;
    cols.push(Arc::new(list));
    cols.extend(truth_arrays(
        schema,
        &rows
            .iter()
            .map(|r| r.base.truth.as_ref())
            .collect::<Vec<_>>(),
    )?);
    RecordBatch::try_new(schema.clone(), cols).map_err(arrow_err)
}

/// Typed access to a batch's columns; errors name the shard and the column.
pub(crate) struct Cols<'a> {
    pub(crate) batch: &'a RecordBatch,
    pub(crate) path: &'a Path,
}

impl<'a> Cols<'a> {
    pub(crate) fn err(&self, column: &str, message: impl Into<String>) -> SchemaError {
        SchemaError::Column {
            path: self.path.into(),
            column: column.into(),
            message: message.into(),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Result<&'a ArrayRef> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| self.err(name, "column is missing"))
    }

    pub(crate) fn no_nulls(&self, name: &str, a: &dyn Array) -> Result<()> {
        if a.null_count() > 0 {
            return Err(self.err(
                name,
                format!("{} null value(s) in a non-nullable column", a.null_count()),
            ));
        }
        Ok(())
    }

    pub(crate) fn string(&self, name: &str, a: &'a ArrayRef) -> Result<&'a StringArray> {
        let s = a
            .as_string_opt::<i32>()
            .ok_or_else(|| self.err(name, format!("expected utf8, found {}", a.data_type())))?;
        self.no_nulls(name, s)?;
        Ok(s)
    }

    pub(crate) fn image(
        &self,
        name: &str,
        a: &'a ArrayRef,
    ) -> Result<(&'a BinaryArray, &'a StringArray)> {
        let s = a.as_struct_opt().ok_or_else(|| {
            self.err(
                name,
                format!("expected struct<bytes, path>, found {}", a.data_type()),
            )
        })?;
        let bytes = s
            .column_by_name(IMAGE_BYTES)
            .and_then(|b| b.as_binary_opt::<i32>())
            .ok_or_else(|| self.err(name, "struct field 'bytes' (binary) is missing"))?;
        let paths = s
            .column_by_name(IMAGE_PATH)
            .and_then(|b| b.as_string_opt::<i32>())
            .ok_or_else(|| self.err(name, "struct field 'path' (utf8) is missing"))?;
        self.no_nulls(name, bytes)?;
        Ok((bytes, paths))
    }

    pub(crate) fn f32_rows(
        &self,
        name: &str,
        a: &'a ArrayRef,
    ) -> Result<(&'a FixedSizeListArray, &'a [f32])> {
        let l = a.as_fixed_size_list_opt().ok_or_else(|| {
            self.err(
                name,
                format!("expected fixed_size_list<float32>, found {}", a.data_type()),
            )
        })?;
        let v = l
            .values()
            .as_primitive_opt::<Float32Type>()
            .ok_or_else(|| self.err(name, "list values are not float32"))?;
        Ok((l, v.values()))
    }
}

pub(crate) fn stored(bytes: &BinaryArray, paths: &StringArray, i: usize) -> StoredImage {
    StoredImage {
        bytes: bytes.value(i).to_vec(),
        path: if paths.is_null(i) {
            String::new()
        } else {
            paths.value(i).to_string()
        },
    }
}

pub(crate) fn read_base(c: &Cols) -> Result<Vec<ImageRecord>> {
    let ids = c.string(ID, c.get(ID)?)?;
    let labels = c
        .get(LABEL)?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| c.err(LABEL, "expected int64"))?;
    let names = c.string(CLASS_NAME, c.get(CLASS_NAME)?)?;
    let hashes = c.string(SOURCE_BLAKE3, c.get(SOURCE_BLAKE3)?)?;
    let w = c
        .get(ORIG_WIDTH)?
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(|| c.err(ORIG_WIDTH, "expected int32"))?;
    let h = c
        .get(ORIG_HEIGHT)?
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(|| c.err(ORIG_HEIGHT, "expected int32"))?;
    let (bytes, paths) = c.image(IMAGE, c.get(IMAGE)?)?;
    c.no_nulls(LABEL, labels)?;
    c.no_nulls(ORIG_WIDTH, w)?;
    c.no_nulls(ORIG_HEIGHT, h)?;
    let mut truth = read_truth(c.batch, c.path)?.map(|t| t.into_iter());
    Ok((0..c.batch.num_rows())
        .map(|i| ImageRecord {
            truth: truth.as_mut().and_then(|t| t.next()),
            id: ids.value(i).to_string(),
            label: labels.value(i),
            class_name: names.value(i).to_string(),
            source_blake3: hashes.value(i).to_string(),
            orig_width: w.value(i),
            orig_height: h.value(i),
            image: stored(bytes, paths, i),
        })
        .collect())
}

/// A batch of an image shard -> records. `path` names the shard in errors.
pub fn batch_to_images(batch: &RecordBatch, path: &Path) -> Result<Vec<ImageRecord>> {
    read_base(&Cols { batch, path })
}
