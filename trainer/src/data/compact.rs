//! Compact counterfactual shards (`[counterfactuals] compact = true`): a variant stores its mask,
//! donor ids and teacher features but no image. When the loader reads a row group it recomposes
//! the chosen variants from the clean images of that row group (a builder batch — the donor pool
//! — never spans row groups), exactly as the builder refilled them (`refill::recompose`). Each
//! clean image involved is decoded once; a row then needs no decode at batch time, where a
//! materialized row decodes its clean image and its variant.

use std::collections::{HashMap, HashSet};

use cfkit_counterfactual::refill::recompose;
use cfkit_schemas::decode_image_sized;
use rayon::prelude::*;

use super::stream::Row;
use super::targets::VariantImage;

/// Resolves every compact variant among `rows` (the kept rows of one row group) into pixels, and
/// keeps the decoded clean images of those rows. `others`: clean PNG bytes of the row group's
/// other rows, by id. A row whose donors cannot be found or decoded gets the reason instead.
pub(super) fn resolve_compact(
    rows: &mut HashMap<u32, Row>,
    others: &HashMap<String, Vec<u8>>,
    size: u32,
) {
    let compact = |row: &Row| matches!(&row.1, Some(Ok(t)) if matches!(&t.variant, Some((_, _, VariantImage::Donors(_)))));
    if !rows.values().any(compact) {
        return;
    }
    let mut png: HashMap<&str, &[u8]> = others
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    for (rec, _) in rows.values() {
        png.insert(rec.id.as_str(), rec.image.bytes.as_slice());
    }
    let mut needed: HashSet<&str> = HashSet::new();
    for row in rows.values().filter(|r| compact(r)) {
        needed.insert(row.0.id.as_str());
        if let Some(Ok(t)) = &row.1 {
            if let Some((_, _, VariantImage::Donors(ids))) = &t.variant {
                needed.extend(ids.iter().map(String::as_str));
            }
        }
    }
    let decoded: HashMap<String, Result<Vec<u8>, String>> = needed
        .into_par_iter()
        .map(|id| {
            let pixels = match png.get(id) {
                None => Err(format!(
                    "donor '{id}' is not in the row group (a compact shard keeps each builder batch in one row group)"
                )),
                Some(bytes) => decode_image_sized(bytes, size).map_err(|e| format!("image of '{id}': {e}")),
            };
            (id.to_string(), pixels)
        })
        .collect();
    for row in rows.values_mut() {
        if !compact(row) {
            continue;
        }
        let id = row.0.id.clone();
        let Some(Ok(t)) = &mut row.1 else { continue };
        let Some((v, mask, VariantImage::Donors(ids))) = &t.variant else {
            continue;
        };
        let resolved = (|| -> Result<(Vec<u8>, Vec<u8>), String> {
            let own = decoded[&id].clone()?;
            let donors: Vec<&[u8]> = ids
                .iter()
                .map(|d| decoded[d].as_deref().map_err(Clone::clone))
                .collect::<Result<_, _>>()?;
            let image = recompose(&own, mask, &donors, size as usize)
                .map_err(|e| format!("variant {v}: {e}"))?;
            Ok((own, image))
        })();
        match resolved {
            Ok((own, image)) => {
                let (v, mask) = (*v, mask.clone());
                t.variant = Some((v, mask, VariantImage::Pixels(image)));
                t.clean = Some(own);
            }
            Err(reason) => row.1 = Some(Err(reason)),
        }
    }
}
