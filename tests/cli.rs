//! End-to-end tests of the `cfkit` binary.

mod common;
use common::cfkit;
use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::Result;
use cfkit_models::weights::read_safetensors;
use cfkit_models::{load_head, Tokenizer};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity")
}

fn tempdir(name: &str) -> common::TmpDir {
    common::tmpdir("cli", name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_every_subcommand_and_their_options() {
    let o = cfkit(&["--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    for sub in ["zeroshot-head", "presets", "doctor"] {
        assert!(text.contains(sub), "--help lacks {sub}: {text}");
    }
    let o = cfkit(&["zeroshot-head", "--help"]);
    let text = String::from_utf8_lossy(&o.stdout);
    for opt in [
        "--model",
        "--weights",
        "--classes",
        "--templates",
        "--vocab",
        "--out",
        "--device",
    ] {
        assert!(text.contains(opt), "zeroshot-head --help lacks {opt}");
    }
}

#[test]
fn zeroshot_head_matches_pytorch_for_both_checkpoint_namings() -> Result<()> {
    let dir = tempdir("zs");
    let classes = dir.join("classes.txt");
    let expected = read_safetensors(&fixtures().join("tiny/expected_hf.safetensors"))?;
    let names: Vec<String> = serde_json::from_str(&expected.metadata["classes"])?;
    std::fs::write(&classes, names.join("\n"))?;
    let config = fixtures().join("tiny/config.json");
    for flavour in ["hf", "open_clip"] {
        let out = dir.join(format!("head-{flavour}.safetensors"));
        let weights = fixtures().join(format!("tiny/{flavour}.safetensors"));
        let o = cfkit(&[
            "zeroshot-head",
            "--model",
            config.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
            "--classes",
            classes.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--device",
            "cpu",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let (head, info) = load_head(&out, tch::Device::Cpu)?;
        let want =
            &read_safetensors(&fixtures().join(format!("tiny/expected_{flavour}.safetensors")))?
                .tensors["zeroshot_weight"];
        let err = (&head.weight - want).abs().max().double_value(&[]);
        assert!(err < 1e-4, "{flavour}: zero-shot weights differ by {err}");
        assert_eq!(info.classes, names);
        assert_eq!(info.templates.len(), 80);
        // ln(100) rounded to float16 in the fixture: exp() = 100.04.
        assert!((info.logit_scale.unwrap() - 100.0).abs() < 0.1);
        assert_eq!(head.bias.abs().sum(tch::Kind::Float).double_value(&[]), 0.0);
        assert_eq!(info.hash.len(), 64);
    }
    // Same text weights, names and templates: same hash; the open_clip file differs.
    let (_, a) = load_head(&dir.join("head-hf.safetensors"), tch::Device::Cpu)?;
    let (_, b) = load_head(&dir.join("head-open_clip.safetensors"), tch::Device::Cpu)?;
    assert_ne!(a.hash, b.hash);
    Ok(())
}

#[test]
fn custom_templates_change_the_head() -> Result<()> {
    let dir = tempdir("tpl");
    std::fs::write(dir.join("classes.txt"), "cat\ndog\n")?;
    std::fs::write(dir.join("t.txt"), "a photo of a {}.\n")?;
    let out = dir.join("head.safetensors");
    let config = fixtures().join("tiny/config.json");
    let weights = fixtures().join("tiny/hf.safetensors");
    let o = cfkit(&[
        "zeroshot-head",
        "--model",
        config.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--classes",
        dir.join("classes.txt").to_str().unwrap(),
        "--templates",
        dir.join("t.txt").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (head, info) = load_head(&out, tch::Device::Cpu)?;
    assert_eq!(info.templates, vec!["a photo of a {}.".to_string()]);
    assert_eq!(head.weight.size(), vec![2, 32]);
    // Each row has norm logit_scale.exp().
    let norms = head.weight.norm_scalaropt_dim(2, [1i64].as_slice(), false);
    let scale = info.logit_scale.unwrap();
    assert!((norms - scale).abs().max().double_value(&[]) < 1e-3);
    Ok(())
}

#[test]
fn bad_inputs_fail_with_clear_messages_and_no_panic() -> Result<()> {
    let dir = tempdir("bad");
    std::fs::write(dir.join("classes.txt"), "cat\n")?;
    let classes = dir.join("classes.txt");
    let config = fixtures().join("tiny/config.json");
    let weights = fixtures().join("tiny/hf.safetensors");
    let out = dir.join("h.safetensors");
    let run = |model: &str, weights: &Path| {
        cfkit(&[
            "zeroshot-head",
            "--model",
            model,
            "--weights",
            weights.to_str().unwrap(),
            "--classes",
            classes.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--device",
            "cpu",
        ])
    };
    let expect_error = |o: Output, needle: &str| {
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(e.contains(needle), "expected '{needle}' in: {e}");
        assert!(!e.contains("panicked"), "{e}");
        e
    };
    expect_error(run("vit-z-99", &weights), "unknown model preset 'vit-z-99'");
    expect_error(
        run(config.to_str().unwrap(), &dir.join("nope.safetensors")),
        "nope.safetensors",
    );
    // A config that does not fit the checkpoint: the tensor, expected and found shapes are named.
    let wide = dir.join("wide.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config)?)?;
    cfg["text_config"]["hidden_size"] = 32.into();
    cfg["text_config"]["intermediate_size"] = 128.into();
    std::fs::write(&wide, cfg.to_string())?;
    let e = expect_error(run(wide.to_str().unwrap(), &weights), "has shape");
    assert!(e.contains("expected [") && e.contains("text_model."), "{e}");
    // A truncated weights file.
    let bytes = std::fs::read(&weights)?;
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2])?;
    expect_error(
        run(config.to_str().unwrap(), &cut),
        "cut.safetensors' is not a valid safetensors file",
    );
    // A vision-only preset has no text tower.
    expect_error(run("tiny", &weights), "no text_config");
    // An empty class list.
    std::fs::write(&classes, "# nothing\n")?;
    expect_error(run(config.to_str().unwrap(), &weights), "lists no classes");
    Ok(())
}

#[test]
fn presets_json_lists_every_preset() -> Result<()> {
    let o = cfkit(&["presets", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(v["vit-b-32"]["vision_config"]["patch_size"], 32);
    assert_eq!(v["tiny"]["vision_config"]["image_size"], 56);
    // The benchmark drivers' copy of the shapes (tools/cfkit_tools/presets.py) matches.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = std::process::Command::new(common::python())
        .args([
            "-c",
            "import json; from cfkit_tools.presets import PRESETS; print(json.dumps(PRESETS))",
        ])
        .env("PYTHONPATH", root.join("tools"))
        .current_dir(root)
        .output()?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let py: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    for (name, shape) in py.as_object().unwrap() {
        for (key, value) in shape.as_object().unwrap() {
            assert_eq!(
                &v[name]["vision_config"][key], value,
                "tools/cfkit_tools/presets.py {name}.{key}"
            );
        }
    }
    Ok(())
}

#[test]
fn doctor_runs_the_model_stack_on_cpu() -> Result<()> {
    let o = cfkit(&[
        "doctor", "--device", "cpu", "--batch", "4", "--reps", "2", "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(v["cam_ok"], true);
    assert_eq!(v["reps"], 2);
    assert!(v["train_step_images_per_s"].as_f64().unwrap() > 0.0);
    let o = cfkit(&["doctor", "--device", "cpu", "--reps", "0"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--reps must be > 0"), "{}", stderr(&o));
    // The project's environment has Gloo's headers (`just gloo`) and, through the CUDA torch
    // wheel and tools/requirements.txt, NCCL's and CUDA's: both process groups are built.
    assert_eq!(
        v["distributed"],
        serde_json::json!({"gloo": true, "nccl": true}),
        "set up by `just check`"
    );
    Ok(())
}

#[test]
fn tokenizer_is_found_in_the_project_venv() {
    // The default vocabulary search used by `zeroshot-head` without --vocab.
    assert!(Tokenizer::discover(None).is_ok());
}

#[test]
fn a_closed_stdout_ends_the_command_quietly_without_a_panic() -> Result<()> {
    // `cfkit presets | head -0`, made deterministic: the pipe's reader is gone before cfkit starts.
    let (reader, writer) = std::io::pipe()?;
    drop(reader);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_cfkit"))
        .arg("presets")
        .stdout(writer)
        .output()?;
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.is_empty(),
        "a closed pipe is not an error to report: {err}"
    );
    // The status a shell gives a process that SIGPIPE ended (128 + 13).
    assert_eq!(o.status.code(), Some(141), "{err}");
    // With a reader, the same command prints and succeeds.
    let o = cfkit(&["presets"]);
    assert!(o.status.success() && !o.stdout.is_empty(), "{}", stderr(&o));
    Ok(())
}
