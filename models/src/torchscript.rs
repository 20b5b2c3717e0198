//! Weights from a TorchScript archive, such as OpenAI's original CLIP files (`ViT-B-32.pt`,
//! written by `torch.jit.save`), read through libtorch's own loader: its unpickler admits only
//! TorchScript's own types, so no Python object of the archive is ever constructed or run —
//! unlike `torch.load` of a pickled state dict, which cfkit does not read at all.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use tch::{Device, Kind};

use crate::error::{ModelError, Result};
use crate::weights::{SafetensorsFile, TensorMap};

/// ZIP local-file-header signature: `torch.jit.save` (and `torch.save` since PyTorch 1.6) write
/// ZIP archives.
const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";

/// True if `path` starts like a ZIP archive (a TorchScript file, or a pickled `torch.save`).
pub(crate) fn is_zip_archive(path: &Path) -> Result<bool> {
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    Ok(f.read_exact(&mut head).is_ok() && head == ZIP_MAGIC)
}

/// Every parameter of the TorchScript module in `path` (names as in its `state_dict`, e.g.
/// `visual.transformer.resblocks.0.attn.in_proj_weight`), floating point ones as f32 on the
/// CPU. Metadata records the archive's origin.
pub(crate) fn read_torchscript(path: &Path) -> Result<SafetensorsFile> {
    let module = tch::CModule::load_on_device(path, Device::Cpu).map_err(|e| {
        // open_clip's Hub uploads carry the same weights as safetensors next to the pickle.
        let sibling = path
            .parent()
            .map(|d| d.join(crate::open_clip::WEIGHTS_FILE))
            .filter(|p| p.is_file());
        let what_to_do = match sibling {
            Some(s) => format!("use '{}' next to it (the same weights)", s.display()),
            None => "use the model's .safetensors file (open_clip ships open_clip_model.safetensors next to open_clip_pytorch_model.bin), or save the state dict with safetensors.torch.save_file".into(),
        };
        ModelError::Input(format!(
            "'{}' is a ZIP archive but not a TorchScript module that libtorch can load ({}); cfkit reads TorchScript archives (torch.jit.save, e.g. OpenAI's ViT-B-32.pt) and safetensors, not pickled state dicts (torch.load can run code): {what_to_do}",
            path.display(),
            e.to_string().lines().next().unwrap_or_default()
        ))
    })?;
    let mut tensors = TensorMap::new();
    for (name, t) in module.named_parameters()? {
        let t = t.detach();
        let t = if t.is_floating_point() {
            t.to_kind(Kind::Float)
        } else {
            t
        };
        tensors.insert(name, t);
    }
    if tensors.is_empty() {
        return Err(ModelError::Input(format!(
            "TorchScript archive '{}' holds no parameters",
            path.display()
        )));
    }
    let metadata = HashMap::from([("source".to_string(), "torchscript".to_string())]);
    Ok(SafetensorsFile { tensors, metadata })
}
