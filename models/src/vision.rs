//! CLIP vision transformer (ViT) with Hugging Face `CLIPVisionModelWithProjection` names.
//!
//! Class token, learned positional embedding, pre-LN (`pre_layrnorm`, sic), pre-LN blocks with
//! QuickGELU, post-LN on the class token, linear projection without bias.

use tch::{nn, Kind, Tensor};

use crate::config::VisionConfig;
use crate::error::{ModelError, Result};
use crate::layers::{layer_norm, EncoderLayer};

/// CLIP's pixel mean and standard deviation (RGB), from OpenAI's CLIP preprocessing.
pub(crate) const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
pub(crate) const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// How uint8 pixels become a model's input: `(x / 255 - mean) / std` per RGB channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

impl Normalize {
    /// CLIP's (OpenAI's mean and std).
    pub const CLIP: Normalize = Normalize {
        mean: CLIP_MEAN,
        std: CLIP_STD,
    };

    /// Pixels in [0, 1], [N, 3, H, W] -> normalised, same shape and kind.
    pub fn apply(&self, pixels: &Tensor) -> Tensor {
        let opts = (pixels.kind(), pixels.device());
        let mean = Tensor::from_slice(&self.mean)
            .to_kind(opts.0)
            .to_device(opts.1)
            .view([1, 3, 1, 1]);
        let std = Tensor::from_slice(&self.std)
            .to_kind(opts.0)
            .to_device(opts.1)
            .view([1, 3, 1, 1]);
        (pixels - mean) / std
    }
}

/// Normalises unnormalised pixels in [0, 1], [N, 3, H, W], with CLIP's mean and std.
pub fn clip_normalize(pixels: &Tensor) -> Tensor {
    Normalize::CLIP.apply(pixels)
}

/// uint8 HWC RGB images (each `size·size·3` bytes) -> one uint8 tensor [N, size, size, 3] on the
/// CPU (what a loader uploads: a quarter of the bytes of float input).
pub fn pixels_tensor<P: AsRef<[u8]>>(images: &[P], size: usize) -> Tensor {
    let mut flat = Vec::with_capacity(images.len() * size * size * 3);
    for image in images {
        flat.extend_from_slice(image.as_ref());
    }
    Tensor::from_slice(&flat).view([images.len() as i64, size as i64, size as i64, 3])
}

impl Normalize {
    /// uint8 pixels [N, S, S, 3] (HWC, on any device) -> the model's float input [N, 3, S, S] on
    /// the same device: `(x / 255 - mean) / std`, computed where the pixels are (on a GPU, a
    /// few elementwise kernels instead of float work on the loader's cores).
    pub fn input(&self, pixels: &Tensor) -> Tensor {
        let t = pixels.permute([0, 3, 1, 2]).to_kind(tch::Kind::Float) / 255.0;
        self.apply(&t)
    }
}

/// uint8 HWC RGB images (each `size·size·3` bytes) -> normalised [N, 3, size, size] float on
/// `device`: `(x / 255 - mean) / std` with the model's `norm`.
pub fn pixels_to_input<P: AsRef<[u8]>>(
    images: &[P],
    size: usize,
    norm: &Normalize,
    device: tch::Device,
) -> Tensor {
    norm.input(&pixels_tensor(images, size).to_device(device))
}

/// What a vision forward should do besides computing features.
#[derive(Debug, Default, Clone, Copy)]
pub struct VisionForward<'a> {
    /// Patch tokens to keep, [N, K] int64 indices into 0..P; the others are dropped after the
    /// positional embedding is added (no-fill with random masks).
    pub keep_patches: Option<&'a Tensor>,
    /// Masked patches, [N, P] bool (true = masked): -inf on these keys in every block
    /// (no-fill with object/context masks). With `keep_patches` it is [N, K] over the kept
    /// tokens (padding of a token-dropped batch whose images keep different counts).
    pub key_mask: Option<&'a Tensor>,
    /// Return every block's post-softmax attention maps (graph kept).
    pub attentions: bool,
    /// Return the output of the last block's `layer_norm1` (GradCAM's activations).
    pub last_block_ln1: bool,
}

/// Result of [`VisionTransformer::forward_with`].
#[derive(Debug)]
pub struct VisionOutput {
    /// Projected, un-normalised image embedding [N, projection_dim].
    pub features: Tensor,
    /// Per block, attention probabilities [N, H, T, T] (T = 1 + kept patches).
    pub attentions: Vec<Tensor>,
    /// The last block's `layer_norm1` output (open_clip: `ln_1`), [N, T, D], in the graph.
    pub last_block_ln1: Option<Tensor>,
}

/// The CLIP vision tower.
#[derive(Debug)]
pub struct VisionTransformer {
    pub config: VisionConfig,
    patch_embedding: Tensor,
    class_embedding: Tensor,
    position_embedding: Tensor,
    pre_layrnorm: nn::LayerNorm,
    layers: Vec<EncoderLayer>,
    post_layernorm: nn::LayerNorm,
    visual_projection: Tensor,
}

impl VisionTransformer {
    /// Creates the variables under `vs` (conventionally the VarStore root): `vision_model.*` and
    /// `visual_projection.weight`. Initialisation follows CLIP's scale-aware normal init loosely;
    /// real use loads weights over it.
    pub fn new(vs: &nn::Path, config: &VisionConfig) -> Result<Self> {
        config.validate()?;
        let c = config;
        let d = c.hidden_size;
        let std = (d as f64).powf(-0.5);
        let vm = vs / "vision_model";
        let emb = &vm / "embeddings";
        let patch_embedding = (&emb / "patch_embedding").randn(
            "weight",
            &[d, 3, c.patch_size, c.patch_size],
            0.0,
            (3.0 * (c.patch_size * c.patch_size) as f64).powf(-0.5),
        );
        let class_embedding = emb.randn("class_embedding", &[d], 0.0, std);
        let position_embedding =
            (&emb / "position_embedding").randn("weight", &[c.num_patches() + 1, d], 0.0, 0.01);
        let pre_layrnorm = layer_norm(&vm / "pre_layrnorm", d, c.layer_norm_eps);
        let enc = &vm / "encoder" / "layers";
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                EncoderLayer::new(
                    &enc / i,
                    d,
                    c.intermediate_size,
                    c.num_attention_heads,
                    c.layer_norm_eps,
                    c.hidden_act,
                )
            })
            .collect();
        let post_layernorm = layer_norm(&vm / "post_layernorm", d, c.layer_norm_eps);
        let visual_projection =
            (vs / "visual_projection").randn("weight", &[c.projection_dim, d], 0.0, std);
        Ok(VisionTransformer {
            config: c.clone(),
            patch_embedding,
            class_embedding,
            position_embedding,
            pre_layrnorm,
            layers,
            post_layernorm,
            visual_projection,
        })
    }

    /// Image features: CLIP-normalised pixels [N, 3, S, S] -> [N, projection_dim], not L2-normalised.
    pub fn features(&self, pixels: &Tensor) -> Result<Tensor> {
        Ok(self
            .forward_with(pixels, VisionForward::default())?
            .features)
    }

    fn check_input(&self, pixels: &Tensor) -> Result<i64> {
        let s = self.config.image_size;
        match pixels.size().as_slice() {
            [n, 3, h, w] if *h == s && *w == s => Ok(*n),
            other => Err(ModelError::Input(format!(
                "vision input must be [N, 3, {s}, {s}], got {other:?}"
            ))),
        }
    }

    /// Patch + class tokens with positions, [N, 3, S, S] -> [N, 1 + P, D].
    fn embed(&self, pixels: &Tensor) -> Tensor {
        let p = self.config.patch_size;
        let patches = pixels
            .conv2d(
                &self.patch_embedding,
                None::<Tensor>,
                [p, p],
                [0, 0],
                [1, 1],
                1,
            )
            .flatten(2, 3)
            .transpose(1, 2); // [N, P, D]
        let n = patches.size()[0];
        let d = self.config.hidden_size;
        let cls = self
            .class_embedding
            .view([1, 1, d])
            .expand([n, 1, d], false);
        Tensor::cat(&[cls, patches], 1) + &self.position_embedding
    }

    /// Full forward. `pixels`: CLIP-normalised [N, 3, S, S].
    pub fn forward_with(&self, pixels: &Tensor, opts: VisionForward) -> Result<VisionOutput> {
        let n = self.check_input(pixels)?;
        let p = self.config.num_patches();
        let d = self.config.hidden_size;
        let mut xs = self.embed(pixels);
        let mut tokens = p; // patch tokens after dropping
        if let Some(keep) = opts.keep_patches {
            let k = match keep.size().as_slice() {
                [kn, k] if *kn == n && *k <= p => *k,
                other => {
                    return Err(ModelError::Input(format!(
                        "keep_patches must be [{n}, K<= {p}], got {other:?}"
                    )))
                }
            };
            let idx = (keep.to_kind(Kind::Int64) + 1)
                .unsqueeze(-1)
                .expand([n, k, d], false);
            let kept = xs.gather(1, &idx, false);
            xs = Tensor::cat(&[xs.narrow(1, 0, 1), kept], 1);
            tokens = k;
        }
        let bias = match opts.key_mask {
            None => None,
            Some(mask) => {
                let p = tokens;
                if mask.size() != [n, p] {
                    return Err(ModelError::Input(format!(
                        "key_mask must be [{n}, {p}], got {:?}",
                        mask.size()
                    )));
                }
                // Class token is never masked; masked keys get -inf before the softmax.
                let full = Tensor::cat(
                    &[
                        mask.zeros_like().narrow(1, 0, 1).to_kind(Kind::Bool),
                        mask.to_kind(Kind::Bool),
                    ],
                    1,
                );
                let zeros = Tensor::zeros([n, 1, 1, p + 1], (xs.kind(), xs.device()));
                Some(zeros.masked_fill(&full.view([n, 1, 1, p + 1]), f64::NEG_INFINITY))
            }
        };
        xs = xs.apply(&self.pre_layrnorm);
        let mut attentions = Vec::new();
        let mut last_block_ln1 = None;
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            let t = layer.forward_traced(&xs, bias.as_ref(), opts.attentions);
            attentions.extend(t.probs);
            if opts.last_block_ln1 && i == last {
                last_block_ln1 = Some(t.ln1);
            }
            xs = t.out;
        }
        let pooled = xs.select(1, 0).apply(&self.post_layernorm);
        let features = pooled.matmul(&self.visual_projection.tr());
        Ok(VisionOutput {
            features,
            attentions,
            last_block_ln1,
        })
    }
}
