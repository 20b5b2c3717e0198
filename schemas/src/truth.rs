//! Ground truth a generator knows about each image (FashionShift): the background family and the
//! object's pixel mask, in two optional trailing columns (`bg_family`, `object_mask`). They let
//! anyone measure what a counterfactual mask hit (`cfkit inspect`: IoU with the object's patches)
//! and split accuracy by background. Datasets made from real files do not have them; a dataset
//! that has them says so in its metadata (`DatasetInfo::scene_truth`), and every row has both.

use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, BooleanArray, FixedSizeListArray, Int32Array, RecordBatch};
use arrow_schema::{DataType, Field, SchemaRef};

use crate::error::{Result, SchemaError};
use crate::fields::{bool_vector, ELEMENT};

pub(crate) const BG_FAMILY: &str = "bg_family";
pub(crate) const OBJECT_MASK: &str = "object_mask";

/// What the generator knows about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneTruth {
    /// Background family index (FashionShift: 0..9, family c is class c's).
    pub bg_family: i32,
    /// `S * S` pixel mask of the object (true = object), row-major at the stored size.
    pub object_mask: Vec<bool>,
}

impl SceneTruth {
    /// The object's patches on a `grid x grid` patch grid: a patch is object when at least half
    /// of its pixels are (the stored side must be a multiple of `grid`).
    pub fn object_patches(&self, grid: usize) -> Option<Vec<bool>> {
        let side = (self.object_mask.len() as f64).sqrt() as usize;
        if grid == 0 || side * side != self.object_mask.len() || !side.is_multiple_of(grid) {
            return None;
        }
        let p = side / grid;
        Some(
            (0..grid * grid)
                .map(|k| {
                    let (gy, gx) = (k / grid, k % grid);
                    let on = (0..p * p)
                        .filter(|&j| self.object_mask[(gy * p + j / p) * side + gx * p + j % p])
                        .count();
                    2 * on >= p * p
                })
                .collect(),
        )
    }
}

/// The two columns, for images of side `image_size`.
pub(crate) fn truth_columns(image_size: u32) -> Vec<Field> {
    vec![
        Field::new(BG_FAMILY, DataType::Int32, true),
        Field::new(
            OBJECT_MASK,
            bool_vector((image_size * image_size) as i32),
            true,
        ),
    ]
}

/// The truth columns of `rows` when `schema` has them (every row must then have its truth);
/// nothing otherwise.
pub(crate) fn truth_arrays(
    schema: &SchemaRef,
    rows: &[Option<&SceneTruth>],
) -> Result<Vec<ArrayRef>> {
    let Ok(field) = schema.field_with_name(OBJECT_MASK) else {
        return Ok(Vec::new());
    };
    let DataType::FixedSizeList(_, len) = field.data_type() else {
        return Err(SchemaError::Record(format!(
            "column {OBJECT_MASK} is {}, expected fixed_size_list<bool>",
            field.data_type()
        )));
    };
    let mut families = Vec::with_capacity(rows.len());
    let mut bits = Vec::with_capacity(rows.len() * *len as usize);
    for (i, r) in rows.iter().enumerate() {
        let t = r.ok_or_else(|| {
            SchemaError::Record(format!(
                "row {i} has no scene truth, but the dataset stores {BG_FAMILY} and {OBJECT_MASK}"
            ))
        })?;
        if t.object_mask.len() != *len as usize {
            return Err(SchemaError::Record(format!(
                "row {i}: {OBJECT_MASK} has {} pixels, the schema says {len}",
                t.object_mask.len()
            )));
        }
        families.push(t.bg_family);
        bits.extend_from_slice(&t.object_mask);
    }
    let mask = FixedSizeListArray::try_new(
        Arc::new(Field::new(ELEMENT, DataType::Boolean, false)),
        *len,
        Arc::new(BooleanArray::from(bits)),
        None,
    )
    .map_err(|e| SchemaError::Record(e.to_string()))?;
    Ok(vec![Arc::new(Int32Array::from(families)), Arc::new(mask)])
}

/// The rows' truth when the batch has the columns (`None` when it has neither).
pub(crate) fn read_truth(batch: &RecordBatch, path: &Path) -> Result<Option<Vec<SceneTruth>>> {
    let err = |column: &str, message: String| SchemaError::Column {
        path: path.into(),
        column: column.into(),
        message,
    };
    let (fam, mask) = match (
        batch.column_by_name(BG_FAMILY),
        batch.column_by_name(OBJECT_MASK),
    ) {
        (None, None) => return Ok(None),
        (Some(f), Some(m)) => (f, m),
        (Some(_), None) => return Err(err(OBJECT_MASK, "missing next to bg_family".into())),
        (None, Some(_)) => return Err(err(BG_FAMILY, "missing next to object_mask".into())),
    };
    let fam = fam.as_primitive_opt::<Int32Type>().ok_or_else(|| {
        err(
            BG_FAMILY,
            format!("expected int32, found {}", fam.data_type()),
        )
    })?;
    let mask = mask.as_fixed_size_list_opt().ok_or_else(|| {
        err(
            OBJECT_MASK,
            format!("expected fixed_size_list<bool>, found {}", mask.data_type()),
        )
    })?;
    let bits = mask
        .values()
        .as_boolean_opt()
        .ok_or_else(|| err(OBJECT_MASK, "list values are not booleans".into()))?;
    if fam.null_count() > 0 || mask.null_count() > 0 {
        return Err(err(BG_FAMILY, "null scene truth in a row".into()));
    }
    let len = mask.value_length() as usize;
    Ok(Some(
        (0..batch.num_rows())
            .map(|i| SceneTruth {
                bg_family: fam.value(i),
                object_mask: (0..len).map(|j| bits.value(i * len + j)).collect(),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_patches_pool_the_pixel_mask() {
        // 4x4 pixels, 2x2 patches: the top-left patch full, the top-right half, the bottom-left
        // one pixel of four, the bottom-right empty.
        let m = [
            1, 1, 1, 0, //
            1, 1, 0, 1, //
            0, 0, 0, 0, //
            1, 0, 0, 0,
        ];
        let t = SceneTruth {
            bg_family: 3,
            object_mask: m.iter().map(|&b| b == 1).collect(),
        };
        assert_eq!(t.object_patches(2).unwrap(), [true, true, false, false]);
        assert_eq!(
            t.object_patches(4).unwrap().iter().filter(|&&b| b).count(),
            7
        );
        assert!(t.object_patches(3).is_none());
    }
}
