//! Real image files as users' folders hold them (issue 16): photographs in every encoding
//! torchvision's default loader reads in ImageNet-style datasets, and damaged copies. cfkit must
//! keep exactly the files Pillow reads, quarantine the others with a reason, and preprocess the
//! kept ones byte for byte as the reference does (ImageFolder's `convert("RGB")`, then torchvision's
//! bicubic resize and center crop; issue 35). Corpus and expectations: tests/realfiles/make_corpus.py
//! (tests/fixtures/realfiles/expected.json records Pillow's verdict per file).

mod common;
use common::{cfkit, ok, python};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use cfkit_pipeline::prepare::decode::{prepare_bytes, Reject, DEFAULT_MAX_PIXELS};
use cfkit_schemas::{decode_image, Manifest, ShardReader};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realfiles")
}

/// file name -> (readable by Pillow, Pillow's mode or error).
fn expected() -> (u32, BTreeMap<String, (bool, String)>) {
    let text = std::fs::read_to_string(corpus().join("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let files = v["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, f)| {
            let readable = f["readable"].as_bool().unwrap();
            let what = if readable { &f["mode"] } else { &f["error"] };
            (name.clone(), (readable, what.as_str().unwrap().to_string()))
        })
        .collect();
    (v["size"].as_u64().unwrap() as u32, files)
}

#[test]
fn cfkit_reads_what_pillow_reads_and_refuses_what_it_refuses() {
    let (size, files) = expected();
    assert!(files.len() >= 40, "corpus has {} files", files.len());
    let mut report = Vec::new();
    for (name, (readable, what)) in &files {
        let bytes = std::fs::read(corpus().join(name)).unwrap();
        match prepare_bytes(&bytes, size, DEFAULT_MAX_PIXELS) {
            Ok(prepared) => {
                assert!(
                    *readable,
                    "{name}: cfkit kept a file Pillow refuses ({what})"
                );
                let got = decode_image(&prepared.png).unwrap();
                let want = decode_image(
                    &std::fs::read(corpus().join(format!("{name}.expected.png"))).unwrap(),
                )
                .unwrap();
                assert_eq!((got.width, got.height), (want.width, want.height), "{name}");
                let diffs: Vec<u8> = got
                    .pixels
                    .iter()
                    .zip(&want.pixels)
                    .map(|(a, b)| a.abs_diff(*b))
                    .collect();
                let max = *diffs.iter().max().unwrap();
                let n = diffs.iter().filter(|&&d| d > 0).count();
                report.push(format!("{name} ({what}): max {max}, differing {n}"));
                // Every format, every mode: byte for byte what the reference's loader gives.
                assert_eq!(max, 0, "{name} ({what}): max |diff| {max} on {n} values");
            }
            Err(reject) => {
                assert!(
                    !*readable,
                    "{name} ({what}): Pillow reads it, cfkit refused: {reject}"
                );
                assert!(!matches!(reject, Reject::Unreadable(_)), "{name}: {reject}");
                assert!(!reject.to_string().is_empty());
                report.push(format!("{name}: refused by both ({reject})"));
            }
        }
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn prepare_keeps_every_readable_file_and_quarantines_every_damaged_one() -> Result<()> {
    let (_, files) = expected();
    let tmp = common::tmpdir("realfiles", "prepare");
    let src = tmp.join("src/photos");
    std::fs::create_dir_all(&src)?;
    for name in files.keys() {
        std::fs::copy(corpus().join(name), src.join(name))?;
    }
    let out = tmp.join("shards");
    ok(cfkit(&[
        "prepare",
        "--image-folder",
        tmp.join("src").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--image-size",
        "32",
        "--max-bad-fraction",
        "1",
        "-q",
    ]));
    let readable: Vec<&String> = files.iter().filter(|(_, v)| v.0).map(|(k, _)| k).collect();
    let manifest = Manifest::read(&out)?;
    let mut stored: Vec<String> = Vec::new();
    for shard in &manifest.splits["train"].shards {
        let reader = ShardReader::open(&out.join(&shard.file))?;
        stored.extend(reader.read_images()?.into_iter().map(|r| r.image.path));
    }
    assert_eq!(stored.len(), readable.len());
    for name in &readable {
        assert!(
            stored.iter().any(|p| p.ends_with(&format!("/{name}.png"))),
            "{name} is readable but was not stored"
        );
    }
    let quarantine = std::fs::read_to_string(out.join("quarantine-train.jsonl"))?;
    let lines: Vec<serde_json::Value> = quarantine
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), files.len() - readable.len(), "{quarantine}");
    for (name, (readable, _)) in &files {
        let entry = lines
            .iter()
            .find(|l| l["path"].as_str().unwrap().ends_with(name.as_str()));
        match (readable, entry) {
            (true, None) | (false, Some(_)) => {}
            (true, Some(e)) => panic!("{name} is readable but quarantined: {e}"),
            (false, None) => panic!("{name} is damaged but not quarantined"),
        }
        if let Some(e) = entry {
            let reason = e["reason"].as_str().unwrap();
            let expected = if name.contains("empty") {
                "empty"
            } else if name.contains("notes") {
                "not an image"
            } else if name.contains("reserved-marker") {
                "marker"
            } else {
                "truncated"
            };
            assert!(
                reason.to_lowercase().contains(expected),
                "{name}: reason '{reason}' (expected it to say {expected})"
            );
        }
    }
    Ok(())
}

/// Damaged JPEGs at random (tests/realfiles/damaged_jpegs.py, 250 files here; `just
/// check-damaged-jpegs` runs 1,000): this build of cfkit keeps exactly what Pillow reads, with
/// the reference's pixels.
#[test]
fn damaged_jpegs_get_pillows_verdict_and_pixels() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = std::process::Command::new(python())
        .arg(root.join("tests/realfiles/damaged_jpegs.py"))
        .args([
            "--cfkit",
            env!("CARGO_BIN_EXE_cfkit"),
            "--per-base",
            "50",
            "--seed",
            "7",
        ])
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "cfkit and Pillow disagree:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("a JSON summary");
    assert_eq!(summary["files"], 250);
    // Both verdicts occur, so the check tests something either way.
    let reads = summary["pillow_reads"].as_u64().unwrap();
    assert!((25..=225).contains(&reads), "{summary}");
}
