//! End-to-end tests of `cfkit demo-data` and `cfkit prepare`: shards that Arrow tools read
//! (pyarrow, DuckDB, Polars, Hugging Face datasets via tests/interop/check_shards.py), bad inputs
//! quarantined with reasons, the bad-fraction threshold, manifests and class lists.

#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom; the limit is for library code

mod common;
use common::{cfkit, err, ok, python};
use std::path::Path;
use std::process::Command;

use anyhow::Result;
use cfkit_schemas::{decode_image, encode_png, Manifest, RgbPixels, ShardReader};

fn tmpdir(name: &str) -> common::TmpDir {
    common::tmpdir("data", name)
}

fn interop(dir: &Path, split: &str) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/check_shards.py");
    let o = Command::new(python())
        .arg(script)
        .arg(dir)
        .arg(split)
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "interop check of {split}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

fn png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let pixels = (0..w * h * 3)
        .map(|i| ((i * 31 + seed * 97) % 251) as u8)
        .collect();
    encode_png(&RgbPixels {
        width: w,
        height: h,
        pixels,
    })
    .unwrap()
}

#[test]
fn demo_data_is_read_by_arrow_tools_and_refuses_a_different_config() -> Result<()> {
    let out = tmpdir("demo");
    let o = out.to_str().unwrap();
    let stdout = ok(cfkit(&[
        "demo-data",
        "--out",
        o,
        "--scale",
        "0.01",
        "--rows-per-shard",
        "60",
        "-q",
    ]));
    assert!(stdout.contains("ood-sketch"), "{stdout}");
    let m = Manifest::read(&out)?;
    assert_eq!(m.splits.len(), 9);
    assert_eq!(m.splits["train"].rows, 100);
    assert_eq!(m.splits["train"].shards.len(), 2);
    for split in ["train", "ood-sketch"] {
        let seen = interop(&out, split);
        assert_eq!(seen["rows"], m.splits[split].rows);
        assert_eq!(seen["classes"], 10);
    }
    // Every shard matches its manifest record, and the images are 56x56.
    for entry in m.splits.values() {
        for s in &entry.shards {
            let r = ShardReader::open_verified(&out.join(&s.file), s.bytes, &s.blake3)?;
            let rows = r.read_images()?;
            assert_eq!(rows.len() as u64, s.rows);
            let img = decode_image(&rows[0].image.bytes)?;
            assert_eq!((img.width, img.height), (56, 56));
        }
    }
    assert!(out.join("run.json").exists());
    // Same config again (quiet or not): accepted. Another seed into the same directory: refused.
    ok(cfkit(&[
        "demo-data",
        "--out",
        o,
        "--scale",
        "0.01",
        "--rows-per-shard",
        "60",
    ]));
    let e = err(cfkit(&[
        "demo-data",
        "--out",
        o,
        "--scale",
        "0.01",
        "--rows-per-shard",
        "60",
        "--seed",
        "1",
        "-q",
    ]));
    assert!(e.contains("another config"), "{e}");
    // The ImageFolder export reads back through `prepare` with the same pixels and labels.
    let tree = out.join("tree");
    let o2 = out.join("demo2");
    ok(cfkit(&[
        "demo-data",
        "--out",
        o2.to_str().unwrap(),
        "--scale",
        "0.01",
        "--splits",
        "val",
        "--image-folder",
        tree.to_str().unwrap(),
        "-q",
    ]));
    let val = tree.join("val");
    let back = out.join("back");
    ok(cfkit(&[
        "prepare",
        "--image-folder",
        val.to_str().unwrap(),
        "--classes",
        val.join("classes.txt").to_str().unwrap(),
        "--split",
        "val",
        "--image-size",
        "56",
        "--out",
        back.to_str().unwrap(),
        "-q",
    ]));
    let read = |dir: &Path| -> Result<Vec<(String, i64, Vec<u8>)>> {
        let m = Manifest::read(dir)?;
        let mut rows = Vec::new();
        for s in &m.splits["val"].shards {
            for r in ShardReader::open(&dir.join(&s.file))?.read_images()? {
                let name =
                    r.id.rsplit('/')
                        .next()
                        .unwrap()
                        .trim_end_matches(".png")
                        .to_string();
                rows.push((name, r.label, decode_image(&r.image.bytes)?.pixels));
            }
        }
        rows.sort();
        Ok(rows)
    };
    assert_eq!(read(&o2)?, read(&back)?);
    // `verify` passes on the intact dataset and names every damaged shard.
    let stdout = ok(cfkit(&["verify", o]));
    assert!(stdout.contains("shard(s)"), "{stdout}");
    let train0 = out.join(&m.splits["train"].shards[0].file);
    let mut bytes = std::fs::read(&train0)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&train0, &bytes)?;
    let sketch = out.join(&m.splits["ood-sketch"].shards[0].file);
    let bytes = std::fs::read(&sketch)?;
    std::fs::write(&sketch, &bytes[..bytes.len() - 100])?;
    let e = err(cfkit(&["verify", o]));
    assert!(
        e.contains("train-00000-of-00002.parquet")
            && e.contains("ood-sketch-00000-of-00001.parquet"),
        "{e}"
    );
    assert!(e.contains("2 problem(s)"), "{e}");
    // A missing Fashion-MNIST directory says what to install.
    let e = err(cfkit(&[
        "demo-data",
        "--out",
        out.join("x").to_str().unwrap(),
        "--fashion-mnist",
        "/nonexistent",
        "-q",
    ]));
    assert!(e.contains("dataset-fashion-mnist"), "{e}");
    Ok(())
}

/// An ImageFolder with good images and every kind of bad input.
fn messy_folder(root: &Path) -> Result<()> {
    for c in ["cat", "dog", "empty"] {
        std::fs::create_dir_all(root.join(c))?;
    }
    for i in 0..6 {
        std::fs::write(root.join(format!("cat/c{i}.png")), png(40 + i, 30, i))?;
        std::fs::write(root.join(format!("dog/d{i}.png")), png(30, 50 + i, 10 + i))?;
    }
    std::fs::write(root.join("dog/copy_of_d0.png"), png(30, 50, 10))?; // duplicate bytes
    std::fs::write(root.join("cat/png_named.jpg"), png(33, 33, 3))?; // fake extension, real image: kept
    std::fs::write(root.join("cat/zero.png"), b"")?;
    std::fs::write(root.join("cat/notes.jpg"), b"this is text, not a JPEG")?;
    let good = png(64, 64, 5);
    std::fs::write(root.join("dog/truncated.png"), &good[..good.len() / 2])?;
    std::fs::write(root.join("dog/huge.png"), png(400, 300, 1))?; // over --max-pixels 100000
    std::os::unix::fs::symlink("..", root.join("dog/loop"))?;
    Ok(())
}

#[test]
fn prepare_quarantines_bad_inputs_and_keeps_the_good_ones_exactly() -> Result<()> {
    let dir = tmpdir("prep");
    let src = dir.join("src");
    messy_folder(&src)?;
    let out = dir.join("out");
    let args = |frac: &str, out: &Path| {
        cfkit(&[
            "prepare",
            "--image-folder",
            src.to_str().unwrap(),
            "--split",
            "val",
            "--out",
            out.to_str().unwrap(),
            "--image-size",
            "24",
            "--max-pixels",
            "100000",
            "--max-bad-fraction",
            frac,
            "-q",
        ])
    };
    let stdout = ok(args("0.5", &out));
    assert!(
        stdout.contains("copy_of_d0.png") && stdout.contains("d0.png"),
        "duplicates reported: {stdout}"
    );
    let q = std::fs::read_to_string(out.join("quarantine-val.jsonl"))?;
    let reasons: Vec<serde_json::Value> = q
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |name: &str| {
        reasons
            .iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not quarantined: {q}"))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(find("zero.png").contains("empty file"));
    assert!(find("notes.jpg").contains("not an image"));
    assert!(find("truncated.png").starts_with("truncated PNG"));
    assert!(find("huge.png").contains("400x300"));
    assert!(find("loop").contains("symlink loop"));
    assert!(find("empty").contains("empty class folder"));

    let m = Manifest::read(&out)?;
    let entry = &m.splits["val"];
    assert_eq!(entry.classes, vec!["cat", "dog", "empty"]);
    assert_eq!(
        entry.rows, 14,
        "6 cats + fake-extension png + 6 dogs + duplicate"
    );
    let rows = ShardReader::open(&out.join(&entry.shards[0].file))?.read_images()?;
    // Stored pixels are exactly the preprocessing of the source file.
    for r in &rows {
        let src_bytes = std::fs::read(src.join(&r.id))?;
        let want = cfkit_pipeline::prepare::preprocess::clip_preprocess_encoded(&src_bytes, 24)?;
        assert_eq!(
            decode_image(&r.image.bytes)?.pixels,
            want.into_raw(),
            "{}",
            r.id
        );
        assert_eq!(r.class_name, entry.classes[r.label as usize]);
        assert_eq!(
            r.source_blake3,
            blake3::hash(&src_bytes).to_hex().to_string()
        );
    }
    interop(&out, "val");

    // 4 bad files of 18 (22%) is over a 10% limit: a clear failure naming the quarantine file.
    let e = err(args("0.1", &dir.join("out2")));
    assert!(
        e.contains("quarantined") && e.contains("quarantine-val.jsonl"),
        "{e}"
    );
    Ok(())
}

#[test]
fn csv_and_parquet_manifests_with_names_or_indices() -> Result<()> {
    let dir = tmpdir("manifest");
    for i in 0..4 {
        std::fs::write(dir.join(format!("{i}.png")), png(20, 20, i))?;
    }
    std::fs::write(
        dir.join("named.csv"),
        "path,label\n0.png,zebra\n1.png,ant\n2.png,zebra\n3.png,ant\n",
    )?;
    let out = dir.join("named");
    ok(cfkit(&[
        "prepare",
        "--manifest",
        dir.join("named.csv").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--image-size",
        "16",
        "-q",
    ]));
    let m = Manifest::read(&out)?;
    assert_eq!(m.splits["train"].classes, vec!["ant", "zebra"]);

    // Integer labels are indices, ordered numerically ("10" after "9").
    let mut csv = String::from("path,label\n");
    for (i, l) in [(0, 10), (1, 9), (2, 2), (3, 0)] {
        csv.push_str(&format!("{i}.png,{l}\n"));
    }
    std::fs::write(dir.join("ints.csv"), csv)?;
    let out = dir.join("ints");
    ok(cfkit(&[
        "prepare",
        "--manifest",
        dir.join("ints.csv").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--image-size",
        "16",
        "-q",
    ]));
    let m = Manifest::read(&out)?;
    assert_eq!(m.splits["train"].classes.len(), 11);
    let rows = ShardReader::open(&out.join(&m.splits["train"].shards[0].file))?.read_images()?;
    let by_id: std::collections::BTreeMap<&str, i64> =
        rows.iter().map(|r| (r.id.as_str(), r.label)).collect();
    assert_eq!(
        by_id.into_iter().collect::<Vec<_>>(),
        vec![("0.png", 10), ("1.png", 9), ("2.png", 2), ("3.png", 0)]
    );

    // A label outside the class list names the row.
    std::fs::write(dir.join("classes.txt"), "ant\nzebra\n")?;
    std::fs::write(dir.join("bad.csv"), "path,label\n0.png,ant\n1.png,yak\n")?;
    let e = err(cfkit(&[
        "prepare",
        "--manifest",
        dir.join("bad.csv").to_str().unwrap(),
        "--classes",
        dir.join("classes.txt").to_str().unwrap(),
        "--out",
        dir.join("bad").to_str().unwrap(),
        "-q",
    ]));
    assert!(e.contains("row 2") && e.contains("yak"), "{e}");
    // A manifest without the needed columns says which it found.
    std::fs::write(dir.join("cols.csv"), "file,class\n0.png,ant\n")?;
    let e = err(cfkit(&[
        "prepare",
        "--manifest",
        dir.join("cols.csv").to_str().unwrap(),
        "--out",
        dir.join("c").to_str().unwrap(),
        "-q",
    ]));
    assert!(
        e.contains("no 'path' column") && e.contains("file, class"),
        "{e}"
    );

    // Parquet manifest written by DuckDB.
    let pq = dir.join("m.parquet");
    let sql = format!(
        "copy (select * from read_csv('{}')) to '{}' (format parquet)",
        dir.join("named.csv").display(),
        pq.display()
    );
    let o = Command::new(python())
        .args(["-c", &format!("import duckdb; duckdb.sql(\"{sql}\")")])
        .output()?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.join("pq");
    ok(cfkit(&[
        "prepare",
        "--manifest",
        pq.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--image-size",
        "16",
        "-q",
    ]));
    assert_eq!(Manifest::read(&out)?.splits["train"].rows, 4);
    Ok(())
}

/// (id, label) of every row of `split` in `dir`, in stored order.
fn stored(dir: &Path, split: &str) -> Result<Vec<(String, i64)>> {
    let m = Manifest::read(dir)?;
    let mut out = Vec::new();
    for s in &m.splits[split].shards {
        let r = ShardReader::open(&dir.join(&s.file))?;
        for g in 0..r.num_row_groups() {
            out.extend(r.read_ids(g)?.into_iter().zip(r.read_labels(g)?));
        }
    }
    Ok(out)
}

/// A class-sorted ImageFolder (as ImageNet train is laid out) is stored in a seeded random order,
/// and `--holdout` writes a stratified hold-out split keyed by file id: the same rows whatever
/// the order, never among the split's rows.
#[test]
fn prepare_stores_a_seeded_random_order_and_a_stratified_holdout() -> Result<()> {
    let dir = tmpdir("order");
    let folders = dir.join("folders");
    common::demo_data(
        &dir,
        "train",
        "0.02",
        &["--image-folder", folders.to_str().unwrap()],
    );
    let train = folders.join("train");
    let prepare = |out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let mut args = vec![
            "prepare",
            "--image-folder",
            train.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--image-size",
            "16",
            "--rows-per-shard",
            "64",
            "-q",
        ];
        args.extend_from_slice(extra);
        ok(cfkit(&args));
        out
    };
    let input = stored(&prepare("input", &["--order", "input"]), "train")?;
    assert!(
        input.windows(2).all(|w| w[0].1 <= w[1].1),
        "folder order is class order"
    );
    let a = prepare("a", &[]);
    let shuffled = stored(&a, "train")?;
    let sorted = |mut v: Vec<(String, i64)>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(shuffled.clone()),
        sorted(input.clone()),
        "the same rows"
    );
    // Class changes between neighbours: 9 in folder order; about 90 % of 199 in a random one.
    let changes = shuffled.windows(2).filter(|w| w[0].1 != w[1].1).count();
    assert!(changes > 150, "{changes} class changes in 200 rows");
    // Seeded: the same seed gives the same files, another seed another order.
    let m = |d: &Path| Manifest::read(d).unwrap().splits["train"].clone();
    assert_eq!(m(&prepare("b", &[])), m(&a));
    assert_ne!(stored(&prepare("c", &["--seed", "1"]), "train")?, shuffled);

    // Hold-out: 20 rows, stratified, disjoint, the same ids in either order.
    let h = prepare("h", &["--holdout", "20"]);
    let (kept, held) = (stored(&h, "train")?, stored(&h, "train-holdout")?);
    assert_eq!((kept.len(), held.len()), (180, 20));
    let ids = |v: &[(String, i64)]| -> std::collections::BTreeSet<String> {
        v.iter().map(|(id, _)| id.clone()).collect()
    };
    assert!(ids(&kept).is_disjoint(&ids(&held)));
    assert_eq!(
        sorted([kept.clone(), held.clone()].concat()),
        sorted(input.clone())
    );
    for c in 0..10 {
        let n_c = input.iter().filter(|r| r.1 == c).count() as f64;
        let h_c = held.iter().filter(|r| r.1 == c).count() as f64;
        assert!(
            (h_c - n_c / 10.0).abs() < 1.0,
            "class {c}: {h_c} of {n_c} held out"
        );
    }
    let held_input = stored(
        &prepare("hi", &["--holdout", "20", "--order", "input"]),
        "train-holdout",
    )?;
    assert_eq!(ids(&held_input), ids(&held));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(h.join("run.json"))?)?;
    assert_eq!(run["splits"][1]["split"], "train-holdout");
    assert_eq!(run["config"]["options"]["holdout"]["rows"], 20);
    // A hold-out that leaves nothing, or reuses the split's name, is refused before any work.
    let (bad, train) = (dir.join("bad"), train.to_str().unwrap());
    let refused = |extra: &[&str]| {
        let mut args = vec![
            "prepare",
            "--image-folder",
            train,
            "--out",
            bad.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        err(cfkit(&args))
    };
    let e = refused(&["--holdout", "500"]);
    assert!(e.contains("--holdout 500 leaves no rows"), "{e}");
    let e = refused(&["--holdout", "5", "--holdout-split", "train"]);
    assert!(e.contains("--holdout-split must differ"), "{e}");
    Ok(())
}

/// `prepare --resize-mode/--interpolation/--fill` (a model whose preprocessing is not CLIP's):
/// the pixels follow it (tests/fixtures/preprocess/open_clip checks them against open_clip), the
/// shards and the config record it, and CLIP's default leaves both as they always were.
#[test]
fn prepare_records_a_resize_other_than_clip_s() -> Result<()> {
    let dir = tmpdir("resize");
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ecosystem/images");
    let run = |out: &str, extra: &[&str]| -> Result<(cfkit_schemas::DatasetInfo, Manifest)> {
        let out = dir.join(out);
        let mut args = vec![
            "prepare",
            "--image-folder",
            folder.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--image-size",
            "32",
            "--max-bad-fraction",
            "0.5",
            "--order",
            "input",
            "-q",
        ];
        args.extend_from_slice(extra);
        ok(cfkit(&args));
        let m = Manifest::read(&out)?;
        let info = ShardReader::open(&out.join(&m.splits["train"].shards[0].file))?
            .info()
            .clone();
        Ok((info, m))
    };
    let (clip, m_clip) = run("clip", &[])?;
    assert!(clip.resize.is_clip());
    let text = serde_json::to_string(&clip)?;
    assert!(!text.contains("\"resize\""), "left out for CLIP's: {text}");
    let (longest, m_longest) = run(
        "longest",
        &[
            "--resize-mode",
            "longest",
            "--interpolation",
            "bilinear",
            "--fill",
            "128",
        ],
    )?;
    assert_eq!(
        longest.resize,
        cfkit_schemas::Resize {
            mode: cfkit_schemas::ResizeMode::Longest,
            interpolation: cfkit_schemas::Interpolation::Bilinear,
            fill: 128
        }
    );
    assert!(longest
        .preprocessing
        .contains("ResizeKeepRatio(32, longest, bilinear)"));
    assert_ne!(m_clip.config_hash, m_longest.config_hash);
    // The landscape photographs are padded with the fill above and below.
    let rows = ShardReader::open(
        &dir.join("longest")
            .join(&m_longest.splits["train"].shards[0].file),
    )?
    .read_images()?;
    let coffee = rows.iter().find(|r| r.id.ends_with("coffee.jpg")).unwrap();
    let px = decode_image(&coffee.image.bytes)?;
    assert_eq!(&px.pixels[..3], &[128, 128, 128], "top-left is padding");
    Ok(())
}
