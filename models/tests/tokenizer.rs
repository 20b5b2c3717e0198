//! The BPE tokenizer against open_clip's tokenizer (ids in tests/fixtures/parity/tokenizer.json),
//! and the built-in templates against open_clip's OPENAI_IMAGENET_TEMPLATES.

use std::path::Path;

use anyhow::Result;
use cfkit_models::templates::OPENAI_IMAGENET_TEMPLATES;
use cfkit_models::tokenizer::CONTEXT_LENGTH;
use cfkit_models::Tokenizer;

fn fixture(name: &str) -> Result<serde_json::Value> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/parity")
        .join(name);
    Ok(serde_json::from_str(&std::fs::read_to_string(p)?)?)
}

#[test]
fn token_ids_match_open_clip() -> Result<()> {
    let tok = Tokenizer::from_file(&Tokenizer::discover(None)?)?;
    let fx = fixture("tokenizer.json")?;
    let texts = fx["texts"].as_array().unwrap();
    let ids = fx["ids"].as_array().unwrap();
    assert!(!texts.is_empty());
    for (text, want) in texts.iter().zip(ids) {
        let text = text.as_str().unwrap();
        let want: Vec<i64> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let row = tok.tokenize(text, CONTEXT_LENGTH);
        let got: Vec<i64> = row.into_iter().filter(|&i| i != 0).collect();
        assert_eq!(got, want, "tokens of {text:?}");
    }
    Ok(())
}

#[test]
fn builtin_templates_match_open_clip() -> Result<()> {
    let fx = fixture("templates.json")?;
    let want: Vec<&str> = fx
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(OPENAI_IMAGENET_TEMPLATES.to_vec(), want);
    Ok(())
}
