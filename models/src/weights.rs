//! Reading and writing safetensors weights.
//!
//! The in-memory names are Hugging Face transformers' CLIP names. A file with open_clip / OpenAI
//! state-dict names (`visual.transformer.resblocks.N.attn.in_proj_weight`, `visual.proj`, …) is
//! translated on load: fused q/k/v projections are split and `x @ proj` matrices transposed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use tch::{nn, Kind, Tensor};

use crate::error::{ModelError, Result};

/// A tensor read from a file, converted to f32 on the CPU.
pub(crate) type TensorMap = BTreeMap<String, Tensor>;

/// Contents of a safetensors file: tensors and the `__metadata__` strings.
pub struct SafetensorsFile {
    pub tensors: TensorMap,
    pub metadata: HashMap<String, String>,
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    match dtype {
        Dtype::F32 => Some(Kind::Float),
        Dtype::F16 => Some(Kind::Half),
        Dtype::BF16 => Some(Kind::BFloat16),
        Dtype::F64 => Some(Kind::Double),
        Dtype::I64 => Some(Kind::Int64),
        Dtype::U8 => Some(Kind::Uint8),
        Dtype::BOOL => Some(Kind::Bool),
        _ => None,
    }
}

/// Reads every tensor of a safetensors file (floating point ones as f32).
pub fn read_safetensors(path: &Path) -> Result<SafetensorsFile> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
    let bad = |message: String| ModelError::Safetensors {
        path: path.into(),
        message,
    };
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut tensors = TensorMap::new();
    for (name, view) in st.tensors() {
        let kind = kind_of(view.dtype()).ok_or_else(|| ModelError::UnsupportedDtype {
            path: path.into(),
            name: name.clone(),
            dtype: format!("{:?}", view.dtype()),
        })?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)?;
        let float = matches!(
            kind,
            Kind::Float | Kind::Half | Kind::BFloat16 | Kind::Double
        );
        let t = if float { t.to_kind(Kind::Float) } else { t };
        tensors.insert(name, t);
    }
    Ok(SafetensorsFile { tensors, metadata })
}

/// Writes tensors (any device, f32/f16/i64) and string metadata to a safetensors file, via a
/// temporary name renamed into place so a crash never leaves a partial file.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let mut owned: Vec<(String, Vec<u8>, Vec<usize>, Dtype)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.detach().to_device(tch::Device::Cpu).contiguous();
        let (t, dtype) = match t.kind() {
            Kind::Half => (t, Dtype::F16),
            Kind::Int64 => (t, Dtype::I64),
            _ => (t.to_kind(Kind::Float), Dtype::F32),
        };
        let numel = t.numel();
        let mut data = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut data, numel)?;
        let shape = t.size().iter().map(|&d| d as usize).collect();
        owned.push((name.clone(), data, shape, dtype));
    }
    let views = owned
        .iter()
        .map(|(name, data, shape, dtype)| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| ModelError::Safetensors {
                    path: path.into(),
                    message: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = if metadata.is_empty() {
        None
    } else {
        Some(metadata.clone())
    };
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::tensor::serialize_to_file(views, meta, &tmp).map_err(|e| {
        ModelError::Safetensors {
            path: tmp.clone(),
            message: e.to_string(),
        }
    })?;
    std::fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))
}

/// True if the names look like an open_clip / OpenAI state dict.
pub(crate) fn is_open_clip(tensors: &TensorMap) -> bool {
    tensors.keys().any(|k| {
        k.starts_with("visual.")
            || k.starts_with("transformer.resblocks.")
            || k == "token_embedding.weight"
    })
}

/// Translates open_clip / OpenAI names to Hugging Face names (tensors transformed as needed).
pub(crate) fn open_clip_to_hf(tensors: TensorMap) -> TensorMap {
    let mut out = TensorMap::new();
    for (name, t) in tensors {
        let (prefix, rest, tower) = if let Some(rest) = name.strip_prefix("visual.") {
            ("vision_model", rest.to_string(), Tower::Vision)
        } else {
            ("text_model", name.clone(), Tower::Text)
        };
        let block = rest.strip_prefix("transformer.resblocks.");
        let mapped: Vec<(String, Tensor)> = if let Some(block) = block {
            let (idx, field) = block.split_once('.').unwrap_or((block, ""));
            let base = format!("{prefix}.encoder.layers.{idx}");
            match field {
                "attn.in_proj_weight" | "attn.in_proj_bias" => {
                    let kind = if field.ends_with("weight") {
                        "weight"
                    } else {
                        "bias"
                    };
                    let parts = t.chunk(3, 0);
                    ["q_proj", "k_proj", "v_proj"]
                        .iter()
                        .zip(parts)
                        .map(|(p, part)| {
                            (format!("{base}.self_attn.{p}.{kind}"), part.contiguous())
                        })
                        .collect()
                }
                _ => {
                    let f = field
                        .replacen("attn.out_proj", "self_attn.out_proj", 1)
                        .replacen("ln_1", "layer_norm1", 1)
                        .replacen("ln_2", "layer_norm2", 1)
                        .replacen("mlp.c_fc", "mlp.fc1", 1)
                        .replacen("mlp.c_proj", "mlp.fc2", 1);
                    vec![(format!("{base}.{f}"), t)]
                }
            }
        } else {
            let hf = match (tower, rest.as_str()) {
                (Tower::Vision, "conv1.weight") => {
                    "vision_model.embeddings.patch_embedding.weight".into()
                }
                (Tower::Vision, "class_embedding") => {
                    "vision_model.embeddings.class_embedding".into()
                }
                (Tower::Vision, "positional_embedding") => {
                    "vision_model.embeddings.position_embedding.weight".into()
                }
                (Tower::Vision, "proj") => {
                    out.insert("visual_projection.weight".into(), t.tr().contiguous());
                    continue;
                }
                (Tower::Vision, r) if r.starts_with("ln_pre.") => {
                    r.replacen("ln_pre", "vision_model.pre_layrnorm", 1)
                }
                (Tower::Vision, r) if r.starts_with("ln_post.") => {
                    r.replacen("ln_post", "vision_model.post_layernorm", 1)
                }
                (Tower::Text, "token_embedding.weight") => {
                    "text_model.embeddings.token_embedding.weight".into()
                }
                (Tower::Text, "positional_embedding") => {
                    "text_model.embeddings.position_embedding.weight".into()
                }
                (Tower::Text, "text_projection") => {
                    out.insert("text_projection.weight".into(), t.tr().contiguous());
                    continue;
                }
                (Tower::Text, r) if r.starts_with("ln_final.") => {
                    r.replacen("ln_final", "text_model.final_layer_norm", 1)
                }
                (Tower::Text, "logit_scale") => "logit_scale".into(),
                // Unknown names are kept (prefixed) so the strict check reports them.
                (Tower::Vision, r) => format!("vision_model.{r}"),
                (Tower::Text, r) => r.to_string(),
            };
            vec![(hf, t)]
        };
        out.extend(mapped);
    }
    out
}

#[derive(Clone, Copy)]
enum Tower {
    Vision,
    Text,
}

/// Reads a weights file — safetensors, or a TorchScript archive such as OpenAI's `ViT-B-32.pt`
/// ([`crate::torchscript`]) — and returns tensors with Hugging Face names, whatever naming it
/// used.
pub fn read_hf_weights(path: &Path) -> Result<SafetensorsFile> {
    let mut file = if crate::torchscript::is_zip_archive(path)? {
        crate::torchscript::read_torchscript(path)?
    } else {
        read_safetensors(path)?
    };
    // open_clip checkpoints saved from a DDP model carry a `module.` prefix.
    if file.tensors.keys().all(|k| k.starts_with("module.")) {
        file.tensors = std::mem::take(&mut file.tensors)
            .into_iter()
            .map(|(k, v)| (k["module.".len()..].to_string(), v))
            .collect();
    }
    if is_open_clip(&file.tensors) {
        file.tensors = open_clip_to_hf(std::mem::take(&mut file.tensors));
    }
    Ok(file)
}

/// Copies weights into every variable of `vs` whose name starts with one of `prefixes`.
/// Missing tensors and shape mismatches are errors; tensors in the file under the same prefixes
/// that no variable takes are an error too (a config that does not match the checkpoint), except
/// Hugging Face's `position_ids` buffers.
pub fn load_into(
    vs: &nn::VarStore,
    path: &Path,
    tensors: &TensorMap,
    prefixes: &[&str],
) -> Result<()> {
    let vars = vs.variables();
    let mut wanted: Vec<(&String, &Tensor)> = vars
        .iter()
        .filter(|(name, _)| prefixes.iter().any(|p| name.starts_with(p)))
        .collect();
    wanted.sort_by(|a, b| a.0.cmp(b.0));
    let _guard = tch::no_grad_guard();
    for (name, var) in &wanted {
        let src = tensors
            .get(name.as_str())
            .ok_or_else(|| ModelError::MissingTensor {
                path: path.into(),
                name: name.to_string(),
                expected: var.size(),
            })?;
        // A scalar stored as [1] (or the reverse) is the same value.
        let src = if src.numel() == 1 && var.numel() == 1 {
            src.reshape(var.size())
        } else {
            src.shallow_clone()
        };
        if src.size() != var.size() {
            return Err(ModelError::ShapeMismatch {
                path: path.into(),
                name: name.to_string(),
                expected: var.size(),
                found: src.size(),
            });
        }
        let mut var = var.shallow_clone();
        var.f_copy_(&src.to_kind(var.kind()).to_device(var.device()))?;
    }
    let taken: std::collections::HashSet<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
    let unused: Vec<&String> = tensors
        .keys()
        .filter(|k| prefixes.iter().any(|p| k.starts_with(p)))
        .filter(|k| !k.ends_with("position_ids") && !taken.contains(k.as_str()))
        .collect();
    if let Some(example) = unused.first() {
        return Err(ModelError::UnusedTensors {
            path: path.into(),
            count: unused.len(),
            example: example.to_string(),
        });
    }
    Ok(())
}

/// Every variable of `vs` under `prefixes`, sorted by name, ready for [`write_safetensors`].
pub fn named_tensors(vs: &nn::VarStore, prefixes: &[&str]) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p)))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// blake3 of a file, hex.
pub fn file_blake3(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
    Ok(blake3::hash(&bytes).to_hex().to_string())
}
