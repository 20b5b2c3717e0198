//! `cfkit prepare` from the forms users download datasets in — Hugging Face datasets Parquet and
//! WebDataset tars — written by those projects' own libraries (tests/ecosystem/make_fixtures.py):
//! the same rows as the ImageFolder route for the same images, the damaged image quarantined with
//! its identity in every form, damaged containers losing only what is damaged, clear errors.

mod common;

use std::path::{Path, PathBuf};

use cfkit_schemas::{ImageRecord, Manifest, ShardReader};
use common::{cfkit, err, ok, tmpdir};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ecosystem")
}

/// `cfkit prepare <source> --out <out>` in listing order at 64 px; returns the classes and rows.
fn prepare(source: &[&str], out: &Path, extra: &[&str]) -> (Vec<String>, Vec<ImageRecord>) {
    let out_s = out.to_str().unwrap();
    let mut args = vec!["prepare"];
    args.extend_from_slice(source);
    args.extend_from_slice(&[
        "--out",
        out_s,
        "--image-size",
        "64",
        "--max-bad-fraction",
        "0.5",
        "-q",
    ]);
    args.extend_from_slice(extra);
    ok(cfkit(&args));
    rows(out)
}

fn rows(out: &Path) -> (Vec<String>, Vec<ImageRecord>) {
    let m = Manifest::read(out).unwrap();
    let split = &m.splits["train"];
    let mut rows = Vec::new();
    for s in &split.shards {
        rows.extend(
            ShardReader::open(&out.join(&s.file))
                .unwrap()
                .read_images()
                .unwrap(),
        );
    }
    (split.classes.clone(), rows)
}

fn quarantine(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("quarantine-train.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What must match between two routes: everything but the id (and the stored path made from it).
fn content(r: &ImageRecord) -> (i64, String, String, i32, i32, Vec<u8>) {
    (
        r.label,
        r.class_name.clone(),
        r.source_blake3.clone(),
        r.orig_width,
        r.orig_height,
        r.image.bytes.clone(),
    )
}

#[test]
fn every_form_gives_the_image_folder_rows() {
    let f = fixtures();
    let tmp = tmpdir("sources", "forms");
    let s = |p: &str| f.join(p).to_str().unwrap().to_string();
    let folder = s("images");
    let (classes, reference) = prepare(
        &["--image-folder", &folder],
        &tmp.join("folder"),
        &["--order", "input"],
    );
    assert_eq!(classes, ["animal", "object", "person"]);
    assert_eq!(reference.len(), 8, "9 images, one truncated");
    let q = quarantine(&tmp.join("folder"));
    assert_eq!(q.len(), 1);
    assert!(q[0]["path"].as_str().unwrap().ends_with("truncated.jpg"));

    let hf = s("hf");
    let hf_paths = s("hf-paths/train.parquet");
    let wds = s("wds/test");
    let forms: [(&str, Vec<&str>, &str); 3] = [
        (
            "hf",
            vec!["--hf-parquet", &hf],
            "train-00000-of-00002.parquet row 2 (train-00000-of-00002.parquet:2)",
        ),
        (
            "hf-paths",
            vec!["--hf-parquet", &hf_paths],
            "train.parquet row 2 (train.parquet:2) ->",
        ),
        ("wds", vec!["--webdataset", &wds], "0.tar (0.tar/s0000002)"),
    ];
    for (name, source, origin) in forms {
        let out = tmp.join(name);
        let (c, got) = prepare(&source, &out, &["--order", "input"]);
        assert_eq!(
            c, classes,
            "{name}: class names from the dataset's own metadata"
        );
        assert_eq!(got.len(), reference.len(), "{name}");
        for (a, b) in reference.iter().zip(&got) {
            assert_eq!(content(a), content(b), "{name}: row {} vs {}", a.id, b.id);
        }
        let q = quarantine(&out);
        assert_eq!(q.len(), 1, "{name}: {q:?}");
        let path = q[0]["path"].as_str().unwrap();
        assert!(
            path.contains(origin),
            "{name}: quarantine names the row: {path}"
        );
        assert!(q[0]["reason"].as_str().unwrap().contains("truncated JPEG"));
        assert!(
            !out.join(".spill").exists(),
            "{name}: the spill file is removed"
        );
    }
    // The default (shuffled) order holds the same rows.
    let (_, shuffled) = prepare(&["--hf-parquet", &hf], &tmp.join("hf-shuffled"), &[]);
    let mut a: Vec<_> = reference.iter().map(content).collect();
    let mut b: Vec<_> = shuffled.iter().map(content).collect();
    assert_ne!(a, b, "shuffled");
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

/// Copies the WebDataset fixture into `dir` and returns its `test/` folder.
fn wds_copy(dir: &Path) -> PathBuf {
    let test = dir.join("wds/test");
    std::fs::create_dir_all(&test).unwrap();
    for n in ["0.tar", "1.tar", "nshards.txt"] {
        std::fs::copy(fixtures().join("wds/test").join(n), test.join(n)).unwrap();
    }
    std::fs::copy(
        fixtures().join("wds/classnames.txt"),
        dir.join("wds/classnames.txt"),
    )
    .unwrap();
    test
}

#[test]
fn a_truncated_tar_keeps_what_came_before_the_cut() {
    let tmp = tmpdir("sources", "truncated-tar");
    let test = wds_copy(&tmp);
    // 1.tar holds samples 5..8 (4 images): cut it inside its second image.
    let tar = std::fs::read(test.join("1.tar")).unwrap();
    let second_jpg = find(&tar, b"s0000006.jpg").expect("member name in the pax header");
    std::fs::write(test.join("1.tar"), &tar[..second_jpg + 3000]).unwrap();
    let out = tmp.join("out");
    let (_, got) = prepare(
        &["--webdataset", test.to_str().unwrap()],
        &out,
        &["--order", "input"],
    );
    let ids: Vec<_> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "0.tar/s0000000",
            "0.tar/s0000001",
            "0.tar/s0000003",
            "0.tar/s0000004",
            "1.tar/s0000005"
        ]
    );
    let q = quarantine(&out);
    let text = serde_json::to_string(&q).unwrap();
    assert!(
        text.contains("truncated tar: member 's0000006.jpg'"),
        "{text}"
    );
    assert!(
        text.contains("0.tar/s0000002"),
        "the damaged JPEG too: {text}"
    );
}

#[test]
fn a_damaged_tar_header_loses_only_its_member() {
    let tmp = tmpdir("sources", "damaged-header");
    let test = wds_copy(&tmp);
    let mut tar = std::fs::read(test.join("0.tar")).unwrap();
    // The ustar header of s0000001.jpg (behind tarfile's pax header of its mtime): a block that
    // starts with the name; damage the name.
    let header = (0..tar.len())
        .step_by(512)
        .find(|&p| tar[p..].starts_with(b"s0000001.jpg"))
        .expect("the member's header");
    tar[header + 3] ^= 0x55;
    std::fs::write(test.join("0.tar"), &tar).unwrap();
    let out = tmp.join("out");
    let (_, got) = prepare(
        &["--webdataset", test.to_str().unwrap()],
        &out,
        &["--order", "input"],
    );
    assert_eq!(got.len(), 7, "8 good images, one lost with its header");
    assert!(!got.iter().any(|r| r.id == "0.tar/s0000001"));
    let text = serde_json::to_string(&quarantine(&out)).unwrap();
    assert!(text.contains("no valid header"), "{text}");
    assert!(
        text.contains("sample '0.tar/s0000001': no image member"),
        "{text}"
    );
}

#[test]
fn brace_patterns_and_their_mistakes() {
    let tmp = tmpdir("sources", "braces");
    let test = wds_copy(&tmp);
    let pattern = format!("{}/{{0..1}}.tar", test.display());
    let (_, got) = prepare(
        &["--webdataset", &pattern],
        &tmp.join("ok"),
        &["--order", "input"],
    );
    assert_eq!(got.len(), 8);
    let typo = format!("{}/{{0..2}}.tar", test.display());
    let e = err(cfkit(&[
        "prepare",
        "--webdataset",
        &typo,
        "--out",
        tmp.join("bad").to_str().unwrap(),
    ]));
    assert!(e.contains("2.tar' does not exist (from"), "{e}");
    // A directory whose nshards.txt promises more shards than it holds.
    std::fs::remove_file(test.join("1.tar")).unwrap();
    let e = err(cfkit(&[
        "prepare",
        "--webdataset",
        test.to_str().unwrap(),
        "--out",
        tmp.join("bad2").to_str().unwrap(),
    ]));
    assert!(
        e.contains("says 2 shards") && e.contains("holds 1 .tar files"),
        "{e}"
    );
}

#[test]
fn unusable_containers_are_refused_with_what_to_do() {
    let tmp = tmpdir("sources", "refused");
    let out = tmp.join("out");
    let out_s = out.to_str().unwrap();
    // A gzip-compressed tar.
    let gz = tmp.join("0.tar");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).unwrap();
    let e = err(cfkit(&[
        "prepare",
        "--webdataset",
        gz.to_str().unwrap(),
        "--out",
        out_s,
    ]));
    assert!(
        e.contains("gzip-compressed") && e.contains("decompress"),
        "{e}"
    );
    // Parquet without an image column.
    let hf = fixtures().join("hf/train-00000-of-00002.parquet");
    let e = err(cfkit(&[
        "prepare",
        "--hf-parquet",
        hf.to_str().unwrap(),
        "--image-column",
        "picture",
        "--out",
        out_s,
    ]));
    assert!(
        e.contains("no image column 'picture'") && e.contains("image (Struct"),
        "{e}"
    );
    // A file that is not Parquet.
    let e = err(cfkit(&[
        "prepare",
        "--hf-parquet",
        gz.to_str().unwrap(),
        "--out",
        out_s,
    ]));
    assert!(e.contains("not a readable Parquet file"), "{e}");
    // Files of two datasets with different classes.
    let other = tmp.join("other.parquet");
    let py = common::python();
    let status = std::process::Command::new(py)
        .args([
            "-c",
            "import sys, pyarrow as pa, pyarrow.parquet as pq, json\n\
             meta = {'huggingface': json.dumps({'info': {'features': {'image': {'_type': 'Image'}, 'label': {'_type': 'ClassLabel', 'names': ['a', 'b']}}}})}\n\
             t = pa.table({'image': [{'bytes': b'x', 'path': 'x.jpg'}], 'label': [0]}).replace_schema_metadata(meta)\n\
             pq.write_table(t, sys.argv[1])",
            other.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let e = err(cfkit(&[
        "prepare",
        "--hf-parquet",
        hf.to_str().unwrap(),
        other.to_str().unwrap(),
        "--out",
        out_s,
    ]));
    assert!(e.contains("class names differ"), "{e}");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn a_classes_file_renames_the_dataset_s_own_classes_by_index() {
    let tmp = tmpdir("sources", "renamed");
    let f = fixtures();
    let names = tmp.join("ids.txt");
    std::fs::write(&names, "n001\nn002\nn003\n").unwrap();
    let hf = f.join("hf");
    let wds = f.join("wds/test");
    for (name, flag, src) in [("hf", "--hf-parquet", &hf), ("wds", "--webdataset", &wds)] {
        let (classes, rows) = prepare(
            &[
                flag,
                src.to_str().unwrap(),
                "--classes",
                names.to_str().unwrap(),
            ],
            &tmp.join(name),
            &["--order", "input"],
        );
        assert_eq!(classes, ["n001", "n002", "n003"], "{name}");
        assert_eq!(rows[0].class_name, "n001", "{name}");
    }
    std::fs::write(&names, "n001\nn002\n").unwrap();
    let e = err(cfkit(&[
        "prepare",
        "--hf-parquet",
        hf.to_str().unwrap(),
        "--classes",
        names.to_str().unwrap(),
        "--out",
        tmp.join("bad").to_str().unwrap(),
    ]));
    assert!(
        e.contains("lists 2 classes, the dataset's ClassLabel feature names 3"),
        "{e}"
    );
}

#[test]
fn a_cut_parquet_file_loses_its_rows_not_the_run() {
    let tmp = tmpdir("sources", "cut-parquet");
    let hf = tmp.join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    for n in [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ] {
        std::fs::copy(fixtures().join("hf").join(n), hf.join(n)).unwrap();
    }
    let second = hf.join("train-00001-of-00002.parquet");
    let bytes = std::fs::read(&second).unwrap();
    std::fs::write(&second, &bytes[..bytes.len() / 2]).unwrap();
    let out = tmp.join("out");
    let (_, got) = prepare(
        &["--hf-parquet", hf.to_str().unwrap()],
        &out,
        &["--order", "input"],
    );
    assert!(got
        .iter()
        .all(|r| r.id.starts_with("train-00000-of-00002.parquet:")));
    assert_eq!(
        got.len(),
        4,
        "the first file's 5 rows, one of them the truncated JPEG"
    );
    let text = serde_json::to_string(&quarantine(&out)).unwrap();
    assert!(
        text.contains("train-00001-of-00002.parquet")
            && text.contains("not a readable Parquet file"),
        "{text}"
    );
}

#[test]
fn clip_benchmark_names_with_duplicates_need_a_class_list() {
    let tmp = tmpdir("sources", "dup-names");
    let test = wds_copy(&tmp);
    // clip_benchmark's ImageNet classnames.txt names two classes 'missile' (CLIP's names).
    std::fs::write(tmp.join("wds/classnames.txt"), "animal\nanimal\nperson\n").unwrap();
    let e = err(cfkit(&[
        "prepare",
        "--webdataset",
        test.to_str().unwrap(),
        "--out",
        tmp.join("bad").to_str().unwrap(),
    ]));
    assert!(
        e.contains("names two classes 'animal'") && e.contains("--classes"),
        "{e}"
    );
    let ids = tmp.join("ids.txt");
    std::fs::write(&ids, "n001\nn002\nn003\n").unwrap();
    let (classes, rows) = prepare(
        &[
            "--webdataset",
            test.to_str().unwrap(),
            "--classes",
            ids.to_str().unwrap(),
        ],
        &tmp.join("ok"),
        &["--order", "input"],
    );
    assert_eq!(classes, ["n001", "n002", "n003"]);
    assert_eq!(rows.len(), 8);
}
