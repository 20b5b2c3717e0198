//! Zero-shot heads from a CLIP text tower.
//!
//! DESIGN §3: for class c, `W[c] = s · normalise(mean_t normalise(text(t(c))))` with
//! `s = logit_scale.exp()` (100 for released CLIP models) and `b = 0`.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::clip::{ClipModel, Towers};
use crate::config::ClipConfig;
use crate::error::{ModelError, Result};
use crate::head::{save_head, ClassificationHead, HeadInfo};
use crate::templates::fill;
use crate::text::TextTransformer;
use crate::tokenizer::Tokenizer;
use crate::weights::file_blake3;

/// Builds zero-shot head weights [C, E] from a text tower.
/// Texts are encoded in batches of `batch_size` rows.
pub(crate) fn zeroshot_weights(
    text: &TextTransformer,
    tokenizer: &Tokenizer,
    logit_scale: f64,
    classes: &[String],
    templates: &[String],
    batch_size: usize,
    device: Device,
) -> Result<Tensor> {
    if classes.is_empty() || templates.is_empty() {
        return Err(ModelError::Input(
            "a zero-shot head needs at least one class and one template".into(),
        ));
    }
    let ctx = text.config.max_position_embeddings as usize;
    let _guard = tch::no_grad_guard();
    let mut rows = Vec::with_capacity(classes.len());
    for class in classes {
        let mut feats = Vec::new();
        for chunk in templates.chunks(batch_size.max(1)) {
            let ids: Vec<i64> = chunk
                .iter()
                .flat_map(|t| tokenizer.tokenize(&fill(t, class), ctx))
                .collect();
            let tokens = Tensor::from_slice(&ids)
                .view([chunk.len() as i64, ctx as i64])
                .to_device(device);
            feats.push(text.features(&tokens)?.to_kind(Kind::Float));
        }
        let f = Tensor::cat(&feats, 0);
        let f = &f / f.norm_scalaropt_dim(2, [-1], true);
        let mean = f.mean_dim([0i64].as_slice(), false, Kind::Float);
        rows.push(&mean / mean.norm());
    }
    Ok(Tensor::stack(&rows, 0) * logit_scale)
}

/// Everything `cfkit zeroshot-head` needs.
#[derive(Debug, Clone)]
pub struct ZeroShotSpec {
    pub config: ClipConfig,
    pub weights: PathBuf,
    /// The head's class ids (unique; what evaluation sets are matched against).
    pub classes: Vec<String>,
    /// The names put into the prompts, one per class (may repeat, as CLIP's ImageNet names
    /// do); `None`: the class ids themselves.
    pub prompt_names: Option<Vec<String>>,
    pub templates: Vec<String>,
    pub vocab: PathBuf,
    pub device: Device,
    pub batch_size: usize,
}

/// Builds a zero-shot head and writes it to `out`; returns what was recorded in its metadata.
pub fn build_zeroshot_head(spec: &ZeroShotSpec, out: &Path) -> Result<HeadInfo> {
    let tokenizer = Tokenizer::from_file(&spec.vocab)?;
    let model = ClipModel::load(&spec.config, &spec.weights, Towers::Text, spec.device)?;
    let scale = model.logit_scale_exp()?;
    let names = match &spec.prompt_names {
        Some(n) if n.len() != spec.classes.len() => {
            return Err(ModelError::Input(format!(
                "{} prompt names for {} classes; give one name per class, in class order",
                n.len(),
                spec.classes.len()
            )))
        }
        Some(n) => n,
        None => &spec.classes,
    };
    let weight = zeroshot_weights(
        model.text()?,
        &tokenizer,
        scale,
        names,
        &spec.templates,
        spec.batch_size,
        spec.device,
    )?;
    let bias = Tensor::zeros([weight.size()[0]], (Kind::Float, spec.device));
    let weights_hash = file_blake3(&spec.weights)?;
    let info = HeadInfo {
        // Without separate prompt names the hash is the one heads always had.
        hash: match &spec.prompt_names {
            None => HeadInfo::compute_hash(&weights_hash, &spec.classes, &spec.templates),
            Some(n) => HeadInfo::compute_hash(
                &weights_hash,
                &[&spec.classes[..], n].concat(),
                &spec.templates,
            ),
        },
        classes: spec.classes.clone(),
        source: "zeroshot".into(),
        text_weights_blake3: Some(weights_hash),
        templates: spec.templates.clone(),
        logit_scale: Some(scale),
    };
    save_head(out, &ClassificationHead { weight, bias }, &info)?;
    Ok(info)
}

/// Reads a prompt-name file: one name per line (blank lines skipped), repeats allowed.
pub fn load_prompt_names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// Reads a class-list file: one name per line, blank lines and `#` comments skipped, no duplicates.
pub fn load_class_names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    let mut names: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if names.iter().any(|n| n == name) {
            return Err(ModelError::Input(format!(
                "'{}' line {}: class '{name}' is listed twice",
                path.display(),
                i + 1
            )));
        }
        names.push(name.to_string());
    }
    if names.is_empty() {
        return Err(ModelError::Input(format!(
            "'{}' lists no classes",
            path.display()
        )));
    }
    Ok(names)
}
