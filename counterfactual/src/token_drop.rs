//! No-fill counterfactuals by token drop. Hiding the masked keys in every block (the reference's
//! attention mask) leaves the class token — and every kept token — exactly as if the masked
//! tokens were not there at all: they attend, but nothing attends to them. So the student can
//! drop them and pay only for the kept fraction (`RandMaskNoFill(0.75)` keeps a quarter).
//! Images of one batch may keep different counts (object/context masks): they are padded to the
//! largest count, and the padding is hidden as keys, which again changes nothing.

use tch::{Kind, Tensor};

use crate::error::Result;
use cfkit_models::vision::{VisionForward, VisionTransformer};

/// The kept patches of a [N, P] bool mask (true = masked): [N, K] int64 indices in patch order,
/// K the largest kept count of the batch, and a [N, K] bool mask that is true on the padding of
/// images that keep fewer (`None` when every image keeps K).
pub(crate) fn kept_patches(mask: &Tensor) -> (Tensor, Option<Tensor>) {
    let masked = mask.to_kind(Kind::Int64);
    let counts = masked
        .ones_like()
        .sum_dim_intlist([1i64].as_slice(), false, Kind::Int64)
        - masked.sum_dim_intlist([1i64].as_slice(), false, Kind::Int64); // [N]
    let k = if counts.numel() == 0 {
        0
    } else {
        counts.max().int64_value(&[])
    };
    // A stable sort puts the kept patches (0) first, each group in patch order.
    let keep = masked.argsort_stable(true, 1, false).narrow(1, 0, k);
    let pad = Tensor::arange(k, (Kind::Int64, mask.device()))
        .unsqueeze(0)
        .ge_tensor(&counts.unsqueeze(1)); // [N, K]
    let padded = k > 0 && pad.any().int64_value(&[]) != 0;
    (keep, padded.then_some(pad))
}

/// Projected features of `x` [N, 3, S, S] with the patches of `mask` [N, P] dropped: [N, E],
/// equal to a forward with `mask` as key mask; the graph is kept (a student's forward).
pub fn dropped_features(model: &VisionTransformer, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (keep, pad) = kept_patches(mask);
    Ok(model
        .forward_with(
            x,
            VisionForward {
                keep_patches: Some(&keep),
                key_mask: pad.as_ref(),
                ..Default::default()
            },
        )?
        .features)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfkit_models::config::preset;
    use cfkit_models::ClipModel;

    #[test]
    fn dropping_masked_tokens_equals_hiding_their_keys() {
        tch::manual_seed(11);
        let model = ClipModel::new(
            &preset("tiny").unwrap(),
            cfkit_models::Towers::Vision,
            tch::Device::Cpu,
        )
        .unwrap();
        let vision = model.vision().unwrap();
        let x = Tensor::randn([4, 3, 56, 56], (Kind::Float, tch::Device::Cpu));
        // Different kept counts per image, one image keeping nothing, one keeping everything.
        let mut rows = vec![vec![false; 49]; 4];
        for (j, m) in rows[0].iter_mut().enumerate() {
            *m = j % 3 != 0;
        }
        rows[1] = vec![true; 49];
        for (j, m) in rows[3].iter_mut().enumerate() {
            *m = j < 37;
        }
        let flat: Vec<bool> = rows.concat();
        let mask = Tensor::from_slice(&flat).view([4, 49]);
        let (keep, pad) = kept_patches(&mask);
        assert_eq!(keep.size(), [4, 49]); // image 2 keeps all 49
        assert!(pad.is_some());
        let dropped = dropped_features(vision, &x, &mask).unwrap();
        let hidden = vision
            .forward_with(
                &x,
                VisionForward {
                    key_mask: Some(&mask),
                    ..Default::default()
                },
            )
            .unwrap()
            .features;
        let diff = (dropped - hidden).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "token drop differs from key masking by {diff}");
        // An exact count per image (RandMaskNoFill) needs no padding.
        let even = Tensor::from_slice(&[true, false, false, false, true, false]).view([2, 3]);
        let (keep, pad) = kept_patches(&even);
        assert!(pad.is_none());
        assert_eq!(
            Vec::<i64>::try_from(keep.reshape([-1])).unwrap(),
            [1, 2, 0, 2]
        );
    }
}
