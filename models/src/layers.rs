//! The pre-LN transformer block shared by CLIP's vision and text towers.
//!
//! Variable names mirror Hugging Face's `CLIPEncoderLayer`: `layer_norm1`, `self_attn.{q,k,v,out}_proj`,
//! `layer_norm2`, `mlp.fc1`, `mlp.fc2`.

use tch::{nn, Tensor};

use crate::config::Activation;

/// `nn::Linear` with a weight `[out, in]` and a bias `[out]`, as in PyTorch.
pub(crate) fn linear(vs: nn::Path, in_dim: i64, out_dim: i64) -> nn::Linear {
    nn::linear(vs, in_dim, out_dim, Default::default())
}

pub(crate) fn layer_norm(vs: nn::Path, dim: i64, eps: f64) -> nn::LayerNorm {
    let config = nn::LayerNormConfig {
        eps,
        ..Default::default()
    };
    nn::layer_norm(vs, vec![dim], config)
}

/// Multi-head self-attention with separate q/k/v projections.
#[derive(Debug)]
pub(crate) struct Attention {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    out_proj: nn::Linear,
    num_heads: i64,
    head_dim: i64,
}

impl Attention {
    pub(crate) fn new(vs: nn::Path, dim: i64, num_heads: i64) -> Self {
        Attention {
            q_proj: linear(&vs / "q_proj", dim, dim),
            k_proj: linear(&vs / "k_proj", dim, dim),
            v_proj: linear(&vs / "v_proj", dim, dim),
            out_proj: linear(&vs / "out_proj", dim, dim),
            num_heads,
            head_dim: dim / num_heads,
        }
    }

    /// `xs`: [N, T, D]. `bias`: additive attention bias broadcastable to [N, H, T, T] (0 or -inf).
    /// Returns the output [N, T, D] and, when `return_probs`, the post-softmax attention
    /// probabilities [N, H, T, T], part of the autograd graph.
    pub(crate) fn forward(
        &self,
        xs: &Tensor,
        bias: Option<&Tensor>,
        return_probs: bool,
    ) -> (Tensor, Option<Tensor>) {
        let (n, t, d) = xs.size3().expect("attention input must be [N, T, D]");
        let heads = |x: Tensor| {
            x.view([n, t, self.num_heads, self.head_dim])
                .transpose(1, 2)
        };
        let q = heads(xs.apply(&self.q_proj));
        let k = heads(xs.apply(&self.k_proj));
        let v = heads(xs.apply(&self.v_proj));
        let scale = (self.head_dim as f64).powf(-0.5);
        let (context, probs) = if return_probs {
            let mut scores = (q * scale).matmul(&k.transpose(-2, -1));
            if let Some(bias) = bias {
                scores += bias;
            }
            let probs = scores.softmax(-1, scores.kind());
            (probs.matmul(&v), Some(probs))
        } else {
            // Fused kernel (flash / memory-efficient on CUDA); same math, default scale 1/sqrt(hd).
            let ctx =
                Tensor::scaled_dot_product_attention(&q, &k, &v, bias, 0.0, false, None, false);
            (ctx, None)
        };
        let context = context.transpose(1, 2).contiguous().view([n, t, d]);
        (context.apply(&self.out_proj), probs)
    }
}

/// Two-layer MLP.
#[derive(Debug)]
pub(crate) struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
    act: Activation,
}

impl Mlp {
    pub(crate) fn new(vs: nn::Path, dim: i64, hidden: i64, act: Activation) -> Self {
        Mlp {
            fc1: linear(&vs / "fc1", dim, hidden),
            fc2: linear(&vs / "fc2", hidden, dim),
            act,
        }
    }

    /// [.., D] -> [.., D]
    pub(crate) fn forward(&self, xs: &Tensor) -> Tensor {
        let h = xs.apply(&self.fc1);
        let h = match self.act {
            // QuickGELU: x * sigmoid(1.702 x), the constant of OpenAI's CLIP.
            Activation::QuickGelu => &h * (&h * 1.702).sigmoid(),
            Activation::Gelu => h.gelu("none"),
        };
        h.apply(&self.fc2)
    }
}

/// One pre-LN block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Debug)]
pub(crate) struct EncoderLayer {
    layer_norm1: nn::LayerNorm,
    self_attn: Attention,
    layer_norm2: nn::LayerNorm,
    mlp: Mlp,
}

/// An encoder layer's output with the intermediate tensors CAMs read.
#[derive(Debug)]
pub(crate) struct Traced {
    pub out: Tensor,
    pub ln1: Tensor,
    pub probs: Option<Tensor>,
}

impl EncoderLayer {
    pub(crate) fn new(
        vs: nn::Path,
        dim: i64,
        hidden: i64,
        heads: i64,
        eps: f64,
        act: Activation,
    ) -> Self {
        EncoderLayer {
            layer_norm1: layer_norm(&vs / "layer_norm1", dim, eps),
            self_attn: Attention::new(&vs / "self_attn", dim, heads),
            layer_norm2: layer_norm(&vs / "layer_norm2", dim, eps),
            mlp: Mlp::new(&vs / "mlp", dim, hidden, act),
        }
    }

    /// [N, T, D] -> [N, T, D].
    pub(crate) fn forward(&self, xs: &Tensor, bias: Option<&Tensor>) -> Tensor {
        self.forward_traced(xs, bias, false).out
    }

    /// [N, T, D] -> the output [N, T, D] with what CAMs read: the `layer_norm1` output
    /// [N, T, D] (GradCAM's activations: open_clip's `ln_1`) and, when `return_probs`, the
    /// post-softmax attention probabilities [N, H, T, T], both part of the autograd graph.
    pub(crate) fn forward_traced(
        &self,
        xs: &Tensor,
        bias: Option<&Tensor>,
        return_probs: bool,
    ) -> Traced {
        let ln1 = xs.apply(&self.layer_norm1);
        let (attn, probs) = self.self_attn.forward(&ln1, bias, return_probs);
        let xs = xs + attn;
        let out = &xs + self.mlp.forward(&xs.apply(&self.layer_norm2));
        Traced { out, ln1, probs }
    }
}
