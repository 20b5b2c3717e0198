//! How source images become a dataset's stored `S x S` pixels, in open_clip's `preprocess_cfg`
//! terms (open_clip/transform.py `image_transform`, eval branch): the resize mode, the
//! interpolation and the padding colour. The default is CLIP's — torchvision
//! `Resize(S, BICUBIC)` + `CenterCrop(S)` — which every dataset recorded before this field was
//! made with (the field is left out of the metadata then, so those bytes and hashes are
//! unchanged). Mean and std are not here: they belong to the model and are applied when pixels
//! become its input.

use serde::{Deserialize, Serialize};

/// How the image is fitted into the `S x S` square.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// Shorter side to S (aspect kept), then a center crop (`Resize(S)` + `CenterCrop(S)`).
    #[default]
    Shortest,
    /// Longer side to S (aspect kept: `ResizeKeepRatio(S, longest=1)`, sizes rounded half to
    /// even), then centered on an S x S canvas of the fill colour (`CenterCropOrPad(S, fill)`).
    Longest,
    /// Both sides to S (aspect not kept: `Resize((S, S))`).
    Squash,
}

/// The resampling filter (Pillow's, antialiased: its support grows with the downscale).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Keys cubic convolution, a = -0.5 (Pillow `BICUBIC`).
    #[default]
    Bicubic,
    /// Triangle filter (Pillow `BILINEAR`).
    Bilinear,
}

/// Resize mode, interpolation and padding colour of a dataset's pixels.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Resize {
    #[serde(default)]
    pub mode: ResizeMode,
    #[serde(default)]
    pub interpolation: Interpolation,
    /// Value of every channel where the image does not cover the square (open_clip's
    /// `fill_color`; torchvision's center crop pads with 0).
    #[serde(default)]
    pub fill: u8,
}

impl Resize {
    /// CLIP's (the default).
    pub fn is_clip(&self) -> bool {
        *self == Resize::default()
    }

    /// The transform in torchvision/open_clip words, for `size` px.
    pub fn describe(&self, size: u32) -> String {
        let interp = match self.interpolation {
            Interpolation::Bicubic => "bicubic",
            Interpolation::Bilinear => "bilinear",
        };
        match self.mode {
            ResizeMode::Shortest => format!("Resize({size}, {interp}) + CenterCrop({size})"),
            ResizeMode::Longest => format!(
                "ResizeKeepRatio({size}, longest, {interp}) + CenterCropOrPad({size}, fill={})",
                self.fill
            ),
            ResizeMode::Squash => format!("Resize(({size}, {size}), {interp})"),
        }
    }
}

impl std::fmt::Display for Resize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = serde_json::to_value(self.mode).expect("an enum serialises");
        let interp = serde_json::to_value(self.interpolation).expect("an enum serialises");
        write!(
            f,
            "resize mode {}, {} interpolation, fill {}",
            mode.as_str().unwrap_or_default(),
            interp.as_str().unwrap_or_default(),
            self.fill
        )
    }
}
