//! Online counterfactuals (the trainer's reference mode) against the offline builder's: for the
//! same model, batch and seed, every strategy gives the same masks, donors, refilled images and
//! teacher features. Both call `cfkit_counterfactual::step`; this holds the builder's
//! batching, seeding and record assembly to the step the trainer runs online.

use anyhow::Result;
use cfkit_counterfactual::step::{CamModel, CounterfactualStep};
use cfkit_counterfactual::strategy::Strategy;
use cfkit_counterfactual::CamMethod;
use cfkit_models::{preset, ClassificationHead, ClipModel, Towers};
use cfkit_pipeline::builder::batch::{
    compute_batch, encode_batch, to_model_input, variant_seed, BatchSpec, DecodedBatch, Teacher,
};
use cfkit_schemas::{decode_image, ImageRecord, StoredImage};
use tch::{Device, Tensor};

#[test]
fn online_counterfactuals_equal_the_builders() -> Result<()> {
    tch::manual_seed(5);
    let model = ClipModel::new(&preset("tiny")?, Towers::Vision, Device::Cpu)?;
    let vision = model.vision()?;
    let head = ClassificationHead::new(&model.vs.root(), 10, 128);
    let n = 6usize;
    let size = 56usize;
    // Images with structure (so that CAMs differ between images and patches).
    let pixels: Vec<Vec<u8>> = (0..n)
        .map(|k| {
            (0..size * size * 3)
                .map(|i| ((i * (k + 3) + (i / 97) * 13 + k * 41) % 256) as u8)
                .collect()
        })
        .collect();
    let rows: Vec<ImageRecord> = (0..n)
        .map(|k| ImageRecord {
            id: format!("img-{k}"),
            label: (k % 10) as i64,
            class_name: String::new(),
            source_blake3: String::new(),
            orig_width: size as i32,
            orig_height: size as i32,
            image: StoredImage {
                bytes: Vec::new(),
                path: String::new(),
            },
            truth: None,
        })
        .collect();
    let labels = Tensor::from_slice(&rows.iter().map(|r| r.label).collect::<Vec<_>>());
    let strategies = Strategy::reference_defaults();
    let teacher = Teacher {
        vision,
        head: &head,
        device: Device::Cpu,
        cam: CamMethod::Mmcam,
        autocast: None,
    };
    let spec = BatchSpec {
        strategies: &strategies,
        variants: 1,
        seed: 17,
        shard: 0,
        batch: 0,
        store_logits: false,
        compact: false,
    };
    let decoded = DecodedBatch {
        rows: rows.clone(),
        pixels: pixels.clone(),
        rejected: Vec::new(),
    };
    let offline = encode_batch(compute_batch(&teacher, decoded, &spec)?)?;
    let x = to_model_input(&pixels, size, &cfkit_models::Normalize::CLIP, Device::Cpu);
    let mut masked_somewhere = 0;
    for (si, strategy) in strategies.iter().enumerate() {
        let seed = variant_seed(17, 0, 0, si, 0);
        // The trainer's online step, with this model as the CAM model and the teacher.
        let step = CounterfactualStep {
            cam_model: CamModel {
                vision,
                head: &head,
                cam: CamMethod::Mmcam,
            },
            teacher: vision,
        };
        let (cams, on) = step.run(&pixels, &x, &labels, strategy, seed)?;
        let feats = &on.teacher_features;
        for (i, rec) in offline.iter().enumerate() {
            let v = &rec.variants[si];
            assert_eq!(v.strategy, strategy.to_string());
            assert_eq!(v.seed, seed);
            assert_eq!(on.draw.masks[i], v.mask, "{strategy}, image {i}: mask");
            let donors: Vec<String> = on.draw.donors[i]
                .iter()
                .map(|&d| rows[d].id.clone())
                .collect();
            assert_eq!(donors, v.donor_ids, "{strategy}, image {i}: donors");
            assert_eq!(
                on.draw.images[i],
                decode_image(&v.image.bytes)?.pixels,
                "{strategy}, image {i}: refilled image"
            );
            let diff = (feats.get(i as i64) - Tensor::from_slice(&v.teacher_feature))
                .abs()
                .max()
                .double_value(&[]);
            assert!(
                diff < 1e-5,
                "{strategy}, image {i}: feature differs by {diff}"
            );
            masked_somewhere += v.mask.iter().filter(|&&m| m).count();
            // The CAM the masks came from is the builder's stored CAM.
            let cam_diff = cams[i]
                .iter()
                .zip(&rec.cam)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                cam_diff < 1e-6,
                "{strategy}, image {i}: CAM differs by {cam_diff}"
            );
        }
    }
    assert!(masked_somewhere > 0, "no strategy masked anything");
    Ok(())
}
