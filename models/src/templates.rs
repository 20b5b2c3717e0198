//! Prompt templates for zero-shot heads.
//!
//! The built-in set is the 80 ImageNet prompt templates published with OpenAI's CLIP; the parity
//! fixture checks it against open_clip's `OPENAI_IMAGENET_TEMPLATES`.

use std::path::Path;

use crate::error::{ModelError, Result};

/// Placeholder for the class name.
pub(crate) const PLACEHOLDER: &str = "{}";

pub const OPENAI_IMAGENET_TEMPLATES: [&str; 80] = [
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
];

/// The built-in templates as owned strings.
pub fn openai_imagenet_templates() -> Vec<String> {
    OPENAI_IMAGENET_TEMPLATES
        .iter()
        .map(|t| t.to_string())
        .collect()
}

/// Fills a template with a class name.
pub fn fill(template: &str, class_name: &str) -> String {
    template.replacen(PLACEHOLDER, class_name, 1)
}

/// Reads a template file: one template per line, each with exactly one `{}`; blank lines and
/// lines starting with `#` are skipped.
pub fn load_templates(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.matches(PLACEHOLDER).count() != 1 {
            return Err(ModelError::Input(format!(
                "'{}' line {}: a template needs exactly one '{{}}' for the class name, got '{line}'",
                path.display(),
                i + 1
            )));
        }
        out.push(line.to_string());
    }
    if out.is_empty() {
        return Err(ModelError::Input(format!(
            "'{}' holds no templates",
            path.display()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_templates_have_one_placeholder_each_and_are_distinct() {
        let set: std::collections::HashSet<_> = OPENAI_IMAGENET_TEMPLATES.iter().collect();
        assert_eq!(set.len(), 80);
        for t in OPENAI_IMAGENET_TEMPLATES {
            assert_eq!(t.matches(PLACEHOLDER).count(), 1, "{t}");
        }
        assert_eq!(
            fill("a photo of a {}.", "goldfish"),
            "a photo of a goldfish."
        );
    }

    #[test]
    fn template_file_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("cfkit-templates-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.txt");
        std::fs::write(&path, "# comment\na photo of a {}.\n\nno placeholder\n").unwrap();
        let err = load_templates(&path).unwrap_err().to_string();
        assert!(err.contains("line 4"), "{err}");
        std::fs::write(&path, "a photo of a {}.\nart of the {}.\n").unwrap();
        assert_eq!(load_templates(&path).unwrap().len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
