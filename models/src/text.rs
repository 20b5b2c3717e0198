//! CLIP text transformer with Hugging Face `CLIPTextModelWithProjection` names.
//!
//! Token + positional embedding, causal pre-LN blocks, `final_layer_norm`, the feature read at the
//! first end-of-text token, `text_projection` without bias.

use tch::{nn, Kind, Tensor};

use crate::config::TextConfig;
use crate::error::{ModelError, Result};
use crate::layers::{layer_norm, EncoderLayer};

/// The CLIP text tower.
#[derive(Debug)]
pub struct TextTransformer {
    pub config: TextConfig,
    token_embedding: Tensor,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    final_layer_norm: nn::LayerNorm,
    text_projection: Tensor,
}

impl TextTransformer {
    /// Creates `text_model.*` and `text_projection.weight` under `vs`.
    pub fn new(vs: &nn::Path, config: &TextConfig) -> Result<Self> {
        config.validate()?;
        let c = config;
        let d = c.hidden_size;
        let tm = vs / "text_model";
        let emb = &tm / "embeddings";
        let token_embedding =
            (&emb / "token_embedding").randn("weight", &[c.vocab_size, d], 0.0, 0.02);
        let position_embedding = (&emb / "position_embedding").randn(
            "weight",
            &[c.max_position_embeddings, d],
            0.0,
            0.01,
        );
        let enc = &tm / "encoder" / "layers";
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
        let final_layer_norm = layer_norm(&tm / "final_layer_norm", d, c.layer_norm_eps);
        let text_projection = (vs / "text_projection").randn(
            "weight",
            &[c.projection_dim, d],
            0.0,
            (d as f64).powf(-0.5),
        );
        Ok(TextTransformer {
            config: c.clone(),
            token_embedding,
            position_embedding,
            layers,
            final_layer_norm,
            text_projection,
        })
    }

    /// Text features: token ids [N, L] (L <= context length, each row holding an end-of-text
    /// token) -> [N, projection_dim], not L2-normalised.
    pub fn features(&self, tokens: &Tensor) -> Result<Tensor> {
        let (n, l) = match tokens.size().as_slice() {
            [n, l] if *l <= self.config.max_position_embeddings => (*n, *l),
            other => {
                return Err(ModelError::Input(format!(
                    "text input must be [N, L<={}], got {other:?}",
                    self.config.max_position_embeddings
                )))
            }
        };
        let tokens = tokens.to_kind(Kind::Int64);
        let max_id = tokens.max().int64_value(&[]);
        if max_id >= self.config.vocab_size || tokens.min().int64_value(&[]) < 0 {
            return Err(ModelError::Input(format!(
                "token id {max_id} is outside the vocabulary of {}",
                self.config.vocab_size
            )));
        }
        let dev = self.token_embedding.device();
        let kind = self.token_embedding.kind();
        let mut xs = Tensor::embedding(&self.token_embedding, &tokens, -1, false, false)
            + self.position_embedding.narrow(0, 0, l);
        // Causal mask: position i attends to 0..=i.
        let causal = Tensor::ones([l, l], (Kind::Bool, dev)).triu(1);
        let bias = Tensor::zeros([l, l], (kind, dev)).masked_fill(&causal, f64::NEG_INFINITY);
        for layer in &self.layers {
            xs = layer.forward(&xs, Some(&bias));
        }
        let xs = xs.apply(&self.final_layer_norm);
        // First end-of-text position per row (argmax of a 0/1 indicator returns the first max).
        let is_eot = tokens.eq(self.config.eos_token_id);
        if is_eot
            .any_dim(1, false)
            .logical_not()
            .any()
            .int64_value(&[])
            != 0
        {
            return Err(ModelError::Input(format!(
                "a text row has no end-of-text token {}",
                self.config.eos_token_id
            )));
        }
        let eot = is_eot.to_kind(Kind::Int64).argmax(1, false);
        let rows = Tensor::arange(n, (Kind::Int64, dev));
        let pooled = xs.index(&[Some(rows), Some(eot)]);
        Ok(pooled.matmul(&self.text_projection.tr()))
    }
}
