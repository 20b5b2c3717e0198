//! Counterfactual record batches -> rows, reading only the variants a caller needs.
//!
//! A row of the all-strategy shards holds 9 strategies × K variants (each a PNG, a patch mask,
//! donors and a teacher feature), about 170 KB; a training run uses one variant per row or none.
//! [`VariantSelect`] says which variants become Rust values: the others are never copied out of
//! the Arrow arrays, and with [`VariantSelect::None`] the `variants` column need not be read at
//! all (see [`crate::ShardReader::read_row_group_except`]).

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};

use crate::error::Result;
use crate::fields::*;
use crate::records::{read_base, stored, Cols, CounterfactualRecord, Variant};

/// Which stored variants of each row to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantSelect<'s> {
    /// Every variant (inspection, round trips).
    All,
    /// Only the variants of this strategy (as named in the `strategy` field).
    Strategy(&'s str),
    /// None: `variants` of every record is empty, and the batch may lack the column.
    None,
}

/// A batch of a counterfactual shard -> records. `path` names the shard in errors.
pub fn batch_to_counterfactuals(
    batch: &RecordBatch,
    path: &Path,
) -> Result<Vec<CounterfactualRecord>> {
    batch_to_counterfactuals_select(batch, path, VariantSelect::All)
}

/// [`batch_to_counterfactuals`] keeping only the variants `select` names; the other columns are
/// checked and read as always.
pub fn batch_to_counterfactuals_select(
    batch: &RecordBatch,
    path: &Path,
    select: VariantSelect,
) -> Result<Vec<CounterfactualRecord>> {
    let c = Cols { batch, path };
    let base = read_base(&c)?;
    let (feat_l, feats) = c.f32_rows(TEACHER_FEATURE, c.get(TEACHER_FEATURE)?)?;
    let (logit_l, logits) = c.f32_rows(TEACHER_LOGITS, c.get(TEACHER_LOGITS)?)?;
    let (cam_l, cams) = c.f32_rows(CAM, c.get(CAM)?)?;
    c.no_nulls(TEACHER_FEATURE, feat_l)?;
    c.no_nulls(CAM, cam_l)?;
    let (d, nc, p) = (
        feat_l.value_length() as usize,
        logit_l.value_length() as usize,
        cam_l.value_length() as usize,
    );
    let mut variants = match select {
        VariantSelect::None => vec![Vec::new(); base.len()],
        _ => read_variants(&c, select, d)?,
    };
    let mut out = Vec::with_capacity(base.len());
    for (i, base) in base.into_iter().enumerate() {
        out.push(CounterfactualRecord {
            base,
            teacher_feature: feats[i * d..(i + 1) * d].to_vec(),
            teacher_logits: if logit_l.is_null(i) {
                None
            } else {
                Some(logits[i * nc..(i + 1) * nc].to_vec())
            },
            cam: cams[i * p..(i + 1) * p].to_vec(),
            variants: std::mem::take(&mut variants[i]),
        });
    }
    Ok(out)
}

/// The selected variants of every row of the batch; `d` is the teacher feature's length.
fn read_variants(c: &Cols, select: VariantSelect, d: usize) -> Result<Vec<Vec<Variant>>> {
    let list = c
        .get(VARIANTS)?
        .as_list_opt::<i32>()
        .ok_or_else(|| c.err(VARIANTS, "expected list<struct>"))?;
    let vs = list
        .values()
        .as_struct_opt()
        .ok_or_else(|| c.err(VARIANTS, "list values are not structs"))?;
    let field = |name: &str| {
        vs.column_by_name(name)
            .ok_or_else(|| c.err(VARIANTS, format!("variant field '{name}' is missing")))
    };
    let vidx = field(VARIANT)?
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(|| c.err(VARIANTS, "variant.variant is not int32"))?;
    let strategy = c.string(VARIANTS, field(STRATEGY)?)?;
    let masks = field(MASK)?
        .as_fixed_size_list_opt()
        .ok_or_else(|| c.err(VARIANTS, "variant.mask is not fixed_size_list<bool>"))?;
    let mask_bits = masks
        .values()
        .as_boolean_opt()
        .ok_or_else(|| c.err(VARIANTS, "variant.mask values are not bool"))?;
    let donors = field(DONOR_IDS)?
        .as_list_opt::<i32>()
        .ok_or_else(|| c.err(VARIANTS, "variant.donor_ids is not list<utf8>"))?;
    let donor_names = c.string(VARIANTS, donors.values())?;
    let seeds = field(SEED)?
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| c.err(VARIANTS, "variant.seed is not uint64"))?;
    let (vbytes, vpaths) = c.image(VARIANTS, field(IMAGE)?)?;
    let (_, vfeats) = c.f32_rows(VARIANTS, field(TEACHER_FEATURE)?)?;
    let pm = masks.value_length() as usize;
    let offsets = list.value_offsets();
    let donor_offsets = donors.value_offsets();
    let wanted = |j: usize| match select {
        VariantSelect::Strategy(s) => strategy.value(j) == s,
        _ => true,
    };
    Ok((0..c.batch.num_rows())
        .map(|i| {
            (offsets[i] as usize..offsets[i + 1] as usize)
                .filter(|&j| wanted(j))
                .map(|j| Variant {
                    variant: vidx.value(j),
                    strategy: strategy.value(j).to_string(),
                    mask: (j * pm..(j + 1) * pm).map(|k| mask_bits.value(k)).collect(),
                    donor_ids: (donor_offsets[j] as usize..donor_offsets[j + 1] as usize)
                        .map(|k| donor_names.value(k).to_string())
                        .collect(),
                    seed: seeds.value(j),
                    image: stored(vbytes, vpaths, j),
                    teacher_feature: vfeats[j * d..(j + 1) * d].to_vec(),
                })
                .collect()
        })
        .collect())
}
