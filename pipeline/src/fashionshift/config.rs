//! FashionShift's configuration: seed, canvas size, strength of the spurious correlation and the
//! number of samples per split. A plain struct with a `Default`, serialised as it is into the
//! identity of a `demo-data` dataset.

use super::{FashionShiftError, Split};

/// Number of samples per split.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct SplitSizes {
    pub pretrain: usize,
    pub train: usize,
    pub val: usize,
    pub test_id: usize,
    pub ood_bg_random: usize,
    pub ood_bg_anti: usize,
    pub ood_sketch: usize,
    pub ood_render: usize,
    pub ood_near: usize,
}

impl Default for SplitSizes {
    fn default() -> Self {
        Self {
            pretrain: 20_000,
            train: 10_000,
            val: 2_000,
            test_id: 2_000,
            ood_bg_random: 2_000,
            ood_bg_anti: 2_000,
            ood_sketch: 2_000,
            ood_render: 2_000,
            ood_near: 2_000,
        }
    }
}

impl SplitSizes {
    /// The size of `split`.
    pub fn get(&self, split: Split) -> usize {
        let mut copy = *self;
        *copy.get_mut(split)
    }

    /// Mutable access to the size of `split`.
    pub fn get_mut(&mut self, split: Split) -> &mut usize {
        match split {
            Split::Pretrain => &mut self.pretrain,
            Split::Train => &mut self.train,
            Split::Val => &mut self.val,
            Split::TestId => &mut self.test_id,
            Split::OodBgRandom => &mut self.ood_bg_random,
            Split::OodBgAnti => &mut self.ood_bg_anti,
            Split::OodSketch => &mut self.ood_sketch,
            Split::OodRender => &mut self.ood_render,
            Split::OodNear => &mut self.ood_near,
        }
    }
}

/// FashionShift's parameters.
#[derive(
    Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct FashionShiftConfig {
    /// Seed of everything (garment order, backgrounds, colours, placement).
    pub seed: u64,
    /// Canvas side in pixels; 56 = the `tiny` preset (7x7 patches of 8). Lengths scale with it.
    pub image_size: u32,
    /// Probability that an ID image (train, val, test-id, ood-near) shows its class's family.
    pub spurious_rate: f64,
    /// Samples per split.
    pub sizes: SplitSizes,
}

impl Default for FashionShiftConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            image_size: 56,
            spurious_rate: 0.9,
            sizes: SplitSizes::default(),
        }
    }
}

impl FashionShiftConfig {
    /// Checks the ranges: `image_size` in 28..=1024 (below 28 a garment would shrink to a few
    /// pixels; 1024 bounds the work per sample), `spurious_rate` in `[0, 1]`.
    pub fn validate(&self) -> Result<(), FashionShiftError> {
        if !(28..=1024).contains(&self.image_size) {
            return Err(FashionShiftError::InvalidConfig(format!(
                "image_size {} not in 28..=1024",
                self.image_size
            )));
        }
        if !(0.0..=1.0).contains(&self.spurious_rate) {
            return Err(FashionShiftError::InvalidConfig(format!(
                "spurious_rate {} not in [0, 1]",
                self.spurious_rate
            )));
        }
        Ok(())
    }
}
