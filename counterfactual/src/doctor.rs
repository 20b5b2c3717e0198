//! `cfkit doctor`: checks that libtorch loads, which devices it sees, and that the model stack
//! (forward, backward, MMCAM) runs on a device, with timings.

use std::time::Instant;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::cam::{compute_cam, CamMethod};
use crate::error::{CounterfactualError, Result};
use cfkit_models::clip::{ClipModel, Towers};
use cfkit_models::config::preset;
use cfkit_models::head::ClassificationHead;

/// What `doctor` found.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DoctorReport {
    pub cuda_available: bool,
    pub cuda_devices: i64,
    pub cudnn_available: bool,
    pub torch_threads: i32,
    pub device: String,
    pub preset: String,
    pub batch: i64,
    /// Timed repetitions behind each rate, after one untimed warm-up of each.
    pub reps: usize,
    /// Forward+backward of the vision tower, images per second.
    pub train_step_images_per_s: f64,
    /// MMCAM for the labels, images per second.
    pub mmcam_images_per_s: f64,
    /// The CAM has one finite, max-normalised score per patch.
    pub cam_ok: bool,
}

/// Runs the checks on `device` with the `preset_name` vision tower and a random batch. Each rate is
/// the mean over `reps` calls after one untimed warm-up call: the first call on CUDA pays for the
/// caching allocator's first allocations and cuBLAS / cuDNN's algorithm choice (measured on an H200,
/// vit-b-32 at batch 256: one cold step 232 images/s, the mean of ten warm ones 1486).
pub fn run_doctor(
    device: Device,
    preset_name: &str,
    batch: i64,
    reps: usize,
) -> Result<DoctorReport> {
    if reps == 0 {
        return Err(CounterfactualError::Input(
            "doctor needs at least one timed repetition".into(),
        ));
    }
    let config = preset(preset_name)?;
    let model = ClipModel::new(&config, Towers::Vision, device)?;
    let vision = model.vision()?;
    let head = ClassificationHead::new(&model.vs.root(), 10, config.vision_config.projection_dim);
    let s = config.vision_config.image_size;
    let pixels = Tensor::randn([batch, 3, s, s], (Kind::Float, device));
    let labels = Tensor::arange(batch, (Kind::Int64, device)).remainder(10);
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    // Forward + backward of head(vision(pixels)); pixels [batch, 3, s, s] -> logits [batch, 10].
    let step = || -> Result<Tensor> {
        let loss = head
            .forward(&vision.features(&pixels)?)
            .cross_entropy_for_logits(&labels);
        loss.backward();
        Ok(loss)
    };
    // Mean seconds per call of `f` over `reps` calls after one warm-up call; returns the last output.
    let timed = |f: &dyn Fn() -> Result<Tensor>| -> Result<(f64, Tensor)> {
        let mut out = f()?;
        sync();
        let t0 = Instant::now();
        for _ in 0..reps {
            out = f()?;
        }
        sync();
        Ok((t0.elapsed().as_secs_f64() / reps as f64, out))
    };
    let (step_s, loss) = timed(&step)?;
    // cam [batch, num_patches], each row max-normalised to 1.
    let (cam_s, cam) = timed(&|| compute_cam(vision, &head, &pixels, &labels, CamMethod::Mmcam))?;
    let p = config.vision_config.num_patches();
    let finite = cam.isfinite().all().int64_value(&[]) == 1;
    let max = cam.amax([1i64].as_slice(), false);
    let cam_ok =
        cam.size() == [batch, p] && finite && (max - 1.0).abs().max().double_value(&[]) < 1e-4;
    if !loss.double_value(&[]).is_finite() {
        return Err(CounterfactualError::Input(
            "the training loss is not finite".into(),
        ));
    }
    Ok(DoctorReport {
        cuda_available: tch::Cuda::is_available(),
        cuda_devices: tch::Cuda::device_count(),
        cudnn_available: tch::Cuda::cudnn_is_available(),
        torch_threads: tch::get_num_threads(),
        device: format!("{device:?}"),
        preset: preset_name.into(),
        batch,
        reps,
        train_step_images_per_s: batch as f64 / step_s,
        mmcam_images_per_s: batch as f64 / cam_s,
        cam_ok,
    })
}
