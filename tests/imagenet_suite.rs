//! The ImageNet path end to end on CPU (issue 16, item 7): a small ImageNet-shaped tree made of
//! real photographs (tests/fixtures/realfiles) — a few real wnids, -V2 integer folders, -R/-A
//! subsets, ObjectNet folders (mapped and unmapped), a damaged file — and a tiny CLIP in OpenAI's
//! TorchScript format (tests/convert/make_jit_archive.py, random weights), through zero-shot
//! head → convert → prepare → build-counterfactuals → masked FD training → `eval --suite` →
//! `wise-ft --suite`. Plus each protocol's arithmetic and its layout errors.

#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom; the limit is for library code

mod common;
use common::{cfkit, err, ok};
use std::path::{Path, PathBuf};

use anyhow::Result;
use cfkit_pipeline::suite::{list_set, ImagenetProtocol};
use cfkit_trainer::eval::Scoring;
use tch::Tensor;

const PHOTOS: [&str; 8] = [
    "chelsea.jpg",
    "coffee-progressive.jpg",
    "astronaut-cmyk.jpg",
    "rocket-420.jpg",
    "astronaut-rgba.png",
    "rocket.webp",
    "chelsea.bmp",
    "rocket-animated.gif",
];

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/realfiles")
        .join(name)
}

/// Copies `n` photographs (starting at `from`) into `dir`.
fn put(dir: &Path, from: usize, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let name = PHOTOS[(from + i) % PHOTOS.len()];
        std::fs::copy(corpus(name), dir.join(format!("{i}-{name}"))).unwrap();
    }
}

fn lines(file: &str) -> Vec<String> {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/imagenet")
            .join(file),
    )
    .unwrap()
    .lines()
    .map(String::from)
    .collect()
}

/// The small tree: returns (root, train dir, images per set).
fn small_tree(root: &Path) -> (PathBuf, Vec<(&'static str, usize)>) {
    let (r, a, wnids) = (
        lines("imagenet_r_wnids.txt"),
        lines("imagenet_a_wnids.txt"),
        lines("wnids.txt"),
    );
    let index = |w: &str| wnids.iter().position(|x| x == w).unwrap();
    let train = root.join("train");
    put(&train.join(&r[0]), 0, 4);
    put(&train.join(&r[1]), 2, 4);
    put(&train.join(&a[0]), 4, 4);
    std::fs::write(
        train.join(&r[0]).join("damaged.jpg"),
        std::fs::read(corpus("chelsea-cut90.jpg")).unwrap(),
    )
    .unwrap();
    put(&root.join("imagenet/val").join(&r[0]), 1, 2);
    put(&root.join("imagenet/val").join(&a[0]), 3, 2);
    let v2 = root.join("imagenetv2-matched-frequency-format-val");
    put(&v2.join(index(&r[1]).to_string()), 5, 2);
    put(&v2.join(index(&a[0]).to_string()), 6, 1);
    put(&root.join("imagenet-r").join(&r[0]), 0, 2);
    put(&root.join("imagenet-r").join(&r[1]), 7, 1);
    put(&root.join("sketch").join(&r[1]), 2, 2);
    let on = root.join("objectnet-1.0/images");
    put(&on.join("alarm_clock"), 4, 2);
    put(&on.join("backpack"), 1, 1);
    put(&on.join("not_an_imagenet_class"), 0, 2);
    put(&root.join("imagenet-a").join(&a[1]), 3, 2);
    let sizes = vec![
        ("imagenet", 4),
        ("imagenet-v2", 3),
        ("imagenet-r", 3),
        ("imagenet-sketch", 2),
        ("objectnet", 3),
        ("imagenet-a", 2),
    ];
    (train, sizes)
}

/// The zero-shot checkpoint `tmp/<name>` of the tiny archive in `tmp/clip` (one prompt template):
/// `zeroshot-head` over `classes` (prompt names from `names`), then `convert --head`.
fn zeroshot_checkpoint(tmp: &Path, classes: &Path, names: Option<&Path>, name: &str) -> PathBuf {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    std::fs::write(tmp.join("one-template.txt"), "a photo of a {}.\n").unwrap();
    let head = tmp.join(format!("{name}-head.safetensors"));
    let (config, archive) = (
        s(&tmp.join("clip/config.json")),
        s(&tmp.join("clip/clip-tiny.pt")),
    );
    let mut args = vec![
        "zeroshot-head".to_string(),
        "--model".into(),
        config.clone(),
        "--weights".into(),
        archive.clone(),
        "--classes".into(),
        s(classes),
        "--templates".into(),
        s(&tmp.join("one-template.txt")),
        "--out".into(),
        s(&head),
        "--device".into(),
        "cpu".into(),
    ];
    if let Some(n) = names {
        args.extend(["--names".to_string(), s(n)]);
    }
    ok(cfkit(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let out = tmp.join(name);
    ok(cfkit(&[
        "convert",
        "--model",
        &config,
        "--weights",
        &archive,
        "--head",
        &s(&head),
        "--out",
        &s(&out),
    ]));
    out
}

#[test]
fn imagenet_chain_from_real_files_to_the_suite_table_and_wise_ft() -> Result<()> {
    let tmp = common::tmpdir("suite", "chain");
    let root = tmp.join("datasets");
    let (train, sizes) = small_tree(&root);
    common::make_jit_archive(&tmp.join("clip"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/imagenet");
    let config = s(&tmp.join("clip/config.json"));
    // Zero-shot head over the 1000 classes: wnids as class ids, CLIP's names in the prompts.
    let zs = zeroshot_checkpoint(
        &tmp,
        &assets.join("wnids.txt"),
        Some(&assets.join("classnames.txt")),
        "zeroshot",
    );
    // The suite on the zero-shot model.
    let cache = tmp.join("cache");
    let table = ok(cfkit(&[
        "eval",
        "--checkpoint",
        &s(&zs),
        "--suite",
        "imagenet",
        "--root",
        &s(&root),
        "--cache",
        &s(&cache),
        "--device",
        "cpu",
    ]));
    for name in [
        "imagenet (ID)",
        "imagenet-v2",
        "imagenet-r",
        "imagenet-sketch",
        "objectnet",
        "imagenet-a",
        "OOD mean",
    ] {
        assert!(table.contains(name), "{name} missing from\n{table}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(zs.join("suite-imagenet.json"))?)?;
    assert!(zs.join("suite-imagenet.md").exists());
    let sets = json["sets"].as_array().unwrap();
    for (set, (name, n)) in sets.iter().zip(&sizes) {
        assert_eq!(set["set"], *name);
        assert_eq!(set["images"], *n, "{name}");
    }
    assert_eq!(sets[2]["restricted_to_classes"], 200);
    assert_eq!(sets[4]["restricted_to_classes"], 125);
    assert_eq!(sets[4]["unscored_folders"], 1);
    assert_eq!(sets[4]["border_crop_px"], 2);
    assert_eq!(sets[5]["restricted_to_classes"], 200);
    let zs_report = json["report"].clone();
    // Train: prepare with the standard class list, build the headline counterfactuals with the
    // zero-shot teacher, a few steps of masked feature distillation.
    let shards = tmp.join("train-shards");
    ok(cfkit(&[
        "prepare",
        "--image-folder",
        &s(&train),
        "--classes",
        &s(&assets.join("wnids.txt")),
        "--out",
        &s(&shards),
        "--image-size",
        "32",
        "--max-bad-fraction",
        "0.2",
        "-q",
    ]));
    let q = std::fs::read_to_string(shards.join("quarantine-train.jsonl"))?;
    assert!(
        q.contains("damaged.jpg") && q.contains("truncated JPEG"),
        "{q}"
    );
    std::fs::write(
        tmp.join("build.toml"),
        format!(
            "[source]\nshards = \"{}\"\nsplit = \"train\"\n[teacher]\nmodel = \"{config}\"\nweights = \"{}\"\nhead = \"{}\"\n[counterfactuals]\nstrategies = [\"ObjMaskSingleFill(0.3)\"]\nvariants = 1\nseed = 0\nbatch_size = 4\ndevice = \"cpu\"\n[output]\nout = \"{}\"\n",
            s(&shards), s(&zs.join("model.safetensors")), s(&zs.join("head.safetensors")),
            s(&tmp.join("cf"))
        ),
    )?;
    ok(cfkit(&[
        "build-counterfactuals",
        "--config",
        &s(&tmp.join("build.toml")),
        "-q",
    ]));
    std::fs::write(
        tmp.join("train.toml"),
        format!(
            "[model]\ncheckpoint = \"{}\"\n[data]\nshards = \"{}\"\nsplit = \"train\"\nval_holdout = 3\n[train]\nmethod = \"ft-fd\"\nepochs = 1\nbatch_size = 4\nseed = 0\ndevice = \"cpu\"\nlog_every = 1\n[schedule]\nkind = \"one-cycle\"\nmax_lr = 1e-3\npct_start = 0.3\n[distill]\nimages = \"masked\"\nstrategy = \"ObjMaskSingleFill(0.3)\"\nweight = 1.0\n[output]\nout = \"{}\"\n",
            s(&zs), s(&tmp.join("cf")), s(&tmp.join("run"))
        ),
    )?;
    ok(cfkit(&[
        "train",
        "--config",
        &s(&tmp.join("train.toml")),
        "-q",
    ]));
    let ft = tmp.join("run/checkpoints/last");
    ok(cfkit(&[
        "eval",
        "--checkpoint",
        &s(&ft),
        "--suite",
        "imagenet",
        "--root",
        &s(&root),
        "--cache",
        &s(&cache),
        "--device",
        "cpu",
        "--suite-out",
        &s(&tmp.join("ft-suite")),
    ]));
    let ft_json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        tmp.join("ft-suite/suite-imagenet.json"),
    )?)?;
    // WiSE-FT on the suite: α = 0 is the zero-shot model, α = 1 the fine-tuned one.
    let wise = tmp.join("wise");
    ok(cfkit(&[
        "wise-ft",
        "--zeroshot",
        &s(&zs),
        "--finetuned",
        &s(&ft),
        "--alpha",
        "0,0.5,1",
        "--out",
        &s(&wise),
        "--suite",
        "imagenet",
        "--root",
        &s(&root),
        "--cache",
        &s(&cache),
        "--device",
        "cpu",
    ]));
    let w: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(wise.join("wise-ft.json"))?)?;
    let points = w["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    let top1 = |r: &serde_json::Value| -> Vec<f64> {
        r["sets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["correct"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(top1(&points[0]["eval"]), top1(&zs_report));
    assert_eq!(top1(&points[2]["eval"]), top1(&ft_json["report"]));
    assert_eq!(points[1]["eval"]["sets"].as_array().unwrap().len(), 6);
    assert!(std::fs::read_to_string(wise.join("wise-ft.md"))?.contains("imagenet-r"));
    Ok(())
}

#[test]
fn suite_layouts_are_checked_and_errors_name_what_is_wrong() -> Result<()> {
    let tmp = common::tmpdir("suite", "layout");
    let root = tmp.join("datasets");
    small_tree(&root);
    common::make_jit_archive(&tmp.join("clip"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/imagenet");
    // A 3-class head is refused: the suite scores 1000 ImageNet classes.
    let zs3 = zeroshot_checkpoint(&tmp, &tmp.join("clip/classes.txt"), None, "zs3");
    let suite = |ckpt: &Path, extra: &[&str]| {
        let mut args = vec![
            "eval".to_string(),
            "--checkpoint".into(),
            s(ckpt),
            "--suite".into(),
            "imagenet".into(),
            "--root".into(),
            s(&root),
            "--cache".into(),
            s(&tmp.join("cache")),
            "--device".into(),
            "cpu".into(),
        ];
        args.extend(extra.iter().map(|x| x.to_string()));
        cfkit(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let e = err(suite(&zs3, &[]));
    assert!(e.contains("3-class head") && e.contains("1000"), "{e}");
    let zs = zeroshot_checkpoint(
        &tmp,
        &assets.join("wnids.txt"),
        Some(&assets.join("classnames.txt")),
        "zs",
    );
    // A folder that is not one of ImageNet-R's 200 classes, named.
    std::fs::create_dir_all(root.join("imagenet-r/n01440764"))?; // tench: not in ImageNet-R
    let e = err(suite(&zs, &[]));
    assert!(
        e.contains("imagenet-r") && e.contains("n01440764") && e.contains("200 wnids"),
        "{e}"
    );
    std::fs::remove_dir_all(root.join("imagenet-r/n01440764"))?;
    // -V2 folders are class indices 0..999.
    std::fs::create_dir_all(root.join("imagenetv2-matched-frequency-format-val/1000"))?;
    let e = err(suite(&zs, &[]));
    assert!(e.contains("1000") && e.contains("0..999"), "{e}");
    std::fs::remove_dir_all(root.join("imagenetv2-matched-frequency-format-val/1000"))?;
    // A missing set names the directories tried; --sets leaves it out.
    std::fs::rename(root.join("sketch"), tmp.join("sketch-elsewhere"))?;
    let e = err(suite(&zs, &[]));
    assert!(
        e.contains("imagenet-sketch") && e.contains("tried") && e.contains("--set-dir"),
        "{e}"
    );
    ok(suite(&zs, &["--sets", "imagenet,imagenet-r,objectnet"]));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(zs.join("suite-imagenet.json"))?)?;
    assert_eq!(j["sets"].as_array().unwrap().len(), 3);
    // --set-dir gives it explicitly.
    let set_dir = format!("imagenet-sketch={}", s(&tmp.join("sketch-elsewhere")));
    ok(suite(&zs, &["--set-dir", &set_dir]));
    let e = err(suite(&zs, &["--sets", "imagenet-x"]));
    assert!(
        e.contains("imagenet-x") && e.contains("imagenet-sketch"),
        "{e}"
    );
    Ok(())
}

/// The sets as clip_benchmark's WebDataset copies and as Hugging Face Parquet (made from the
/// same images by `webdataset` and `datasets`: tests/ecosystem/suite_forms.py) score exactly as
/// the ImageFolder trees do; a copy labelled by another convention is refused, named.
#[test]
fn the_suite_reads_clip_benchmark_and_hugging_face_copies() -> Result<()> {
    let tmp = common::tmpdir("suite", "containers");
    let root = tmp.join("datasets");
    let (_, sizes) = small_tree(&root);
    common::make_jit_archive(&tmp.join("clip"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/imagenet");
    let zs = zeroshot_checkpoint(
        &tmp,
        &assets.join("wnids.txt"),
        Some(&assets.join("classnames.txt")),
        "zs",
    );
    let suite = |root: &Path, cache: &str, extra: &[&str]| {
        let mut args = vec![
            "eval".to_string(),
            "--checkpoint".into(),
            s(&zs),
            "--suite".into(),
            "imagenet".into(),
            "--root".into(),
            s(root),
            "--cache".into(),
            s(&tmp.join(cache)),
            "--device".into(),
            "cpu".into(),
        ];
        args.extend(extra.iter().map(|x| x.to_string()));
        cfkit(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let report = || -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&std::fs::read_to_string(
            zs.join("suite-imagenet.json"),
        )?)?)
    };
    ok(suite(&root, "cache-folders", &[]));
    let folders = report()?;
    let copies = tmp.join("copies");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ecosystem/suite_forms.py");
    let o = std::process::Command::new(common::python())
        .args([
            s(&script),
            "--folders".into(),
            s(&root),
            "--assets".into(),
            s(&assets),
            "--out".into(),
            s(&copies),
        ])
        .output()?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(suite(&copies, "cache-copies", &[]));
    let copied = report()?;
    assert_eq!(
        copied["table"], folders["table"],
        "the same scores from the copies"
    );
    for (i, (name, n)) in sizes.iter().enumerate() {
        let (a, b) = (&folders["sets"][i], &copied["sets"][i]);
        assert_eq!(b["set"], *name);
        assert_eq!(b["images"], *n, "{name}");
        for key in ["missing_classes", "restricted_to_classes", "border_crop_px"] {
            assert_eq!(a[key], b[key], "{name}: {key}");
        }
        let dir = b["dir"].as_str().unwrap();
        let expect = [
            "imagenet",
            "wds_imagenetv2",
            "wds_imagenet-r",
            "imagenet-sketch",
            "wds_objectnet",
            "wds_imagenet-a",
        ][i];
        assert!(dir.ends_with(expect), "{name} found at {dir}");
    }
    assert_eq!(
        copied["sets"][4]["unscored_folders"], 0,
        "clip_benchmark leaves them out"
    );
    // ImageNet-R's copy with ImageNet's first 200 names: labels of another convention.
    let names: Vec<String> = lines("classnames.txt").into_iter().take(200).collect();
    std::fs::write(
        copies.join("wds_imagenet-r/classnames.txt"),
        names.join("\n"),
    )?;
    let e = err(suite(&copies, "cache-copies", &["--sets", "imagenet-r"]));
    assert!(
        e.contains("imagenet-r")
            && e.contains("classnames.txt disagrees")
            && e.contains("label 0 is 'tench'"),
        "{e}"
    );
    // A 1,000-name classnames.txt for a 200-class set.
    std::fs::write(
        copies.join("wds_imagenet-r/classnames.txt"),
        lines("classnames.txt").join("\n"),
    )?;
    let e = err(suite(&copies, "cache-copies", &["--sets", "imagenet-r"]));
    assert!(
        e.contains("names 1000 classes") && e.contains("convention is 200"),
        "{e}"
    );
    Ok(())
}

#[test]
fn each_protocol_scores_as_published() -> Result<()> {
    let tmp = common::tmpdir("suite", "protocol");
    let root = tmp.join("datasets");
    small_tree(&root);
    let p = ImagenetProtocol::load()?;
    // ImageNet-R: logits restricted to its 200 classes before the argmax.
    let r = list_set(&p, "imagenet-r", &root.join("imagenet-r"))?;
    let scoring = Scoring {
        correct: r.correct.clone(),
        allowed: r.allowed.clone(),
    };
    let label = 0i64; // the set's first class
    let truth = r.correct[0][0];
    let outside = (0..1000)
        .find(|i| !r.allowed.as_ref().unwrap().contains(i))
        .unwrap();
    let mut logits = vec![0f32; 1000];
    logits[outside as usize] = 5.0; // the global argmax is not an ImageNet-R class
    logits[truth as usize] = 3.0;
    let t = Tensor::from_slice(&logits).reshape([1, 1000]);
    assert_eq!(
        scoring.count_correct(&t, &[label])?,
        1,
        "restricted argmax finds the R class"
    );
    let all = Scoring {
        correct: r.correct.clone(),
        allowed: None,
    };
    assert_eq!(
        all.count_correct(&t, &[label])?,
        0,
        "without the restriction it is wrong"
    );
    // ObjectNet: many-to-one (alarm clock = analog or digital clock), restricted to the 125.
    let on = list_set(&p, "objectnet", &root.join("objectnet-1.0/images"))?;
    assert_eq!(on.unscored_folders, 1);
    let alarm = on
        .listing
        .classes
        .iter()
        .position(|c| c == "alarm_clock")
        .unwrap() as i64;
    assert_eq!(on.correct[alarm as usize], vec![409, 530]);
    let scoring = Scoring {
        correct: on.correct.clone(),
        allowed: on.allowed.clone(),
    };
    for (argmax, want) in [(530, 1), (409, 1), (414, 0)] {
        let mut logits = vec![0f32; 1000];
        logits[0] = 9.0; // tench: not an ObjectNet class, outside the restriction
        logits[argmax] = 4.0;
        let t = Tensor::from_slice(&logits).reshape([1, 1000]);
        assert_eq!(
            scoring.count_correct(&t, &[alarm])?,
            want,
            "argmax {argmax}"
        );
    }
    // ObjectNet's border: 2 px cut before preprocessing.
    assert_eq!(on.border_crop, 2);
    // ImageNet-V2: the label is the folder's number, not its sorted position ("10" < "9").
    let v2 = tmp.join("v2");
    put(&v2.join("10"), 0, 1);
    put(&v2.join("9"), 1, 1);
    let l = list_set(&p, "imagenet-v2", &v2)?;
    let labels: Vec<(String, i64)> = l
        .listing
        .items
        .iter()
        .map(|i| (i.id.clone(), i.label))
        .collect();
    assert!(
        labels
            .iter()
            .any(|(id, lab)| id.starts_with("10/") && *lab == 10),
        "{labels:?}"
    );
    assert!(
        labels
            .iter()
            .any(|(id, lab)| id.starts_with("9/") && *lab == 9),
        "{labels:?}"
    );
    // ImageNet val / Sketch: wnid folders -> their standard index.
    let val = list_set(&p, "imagenet", &root.join("imagenet/val"))?;
    let r0 = lines("imagenet_r_wnids.txt")[0].clone();
    let idx = p.index_of(&r0).unwrap();
    assert!(val
        .listing
        .items
        .iter()
        .all(|i| val.correct[i.label as usize][0] == idx
            || val.listing.classes[i.label as usize] != r0));
    assert!(val.allowed.is_none());
    Ok(())
}

/// The ImageNet recipes load, and carry the reference's hyperparameters (Coxy7/robust-finetuning
/// main_standard.py / main_distill.py defaults: AdamW lr 3e-5, wd 0.1, batch 512, 10 epochs,
/// OneCycle pct 0.02, 10,240 held-out images, grad clip 1, distillation weight 30), masked FD
/// both offline and online.
#[test]
fn imagenet_recipes_follow_the_reference() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/imagenet");
    for model in ["vit-b-32", "vit-b-16"] {
        let build =
            cfkit_pipeline::builder::BuildConfig::load(&dir.join(model).join("build.toml"))?;
        let b = serde_json::to_value(&build)?;
        assert_eq!(b["teacher"]["model"], model);
        assert_eq!(
            b["counterfactuals"]["strategies"][0],
            "ObjMaskSingleFill(0.3)"
        );
        // A fresh counterfactual every epoch, stored compact.
        assert_eq!(b["counterfactuals"]["variants"], 10);
        assert_eq!(b["counterfactuals"]["compact"], true);
        for (name, method, distill) in [
            ("ft", "ft", None),
            ("ft-fd", "ft-fd", Some("clean")),
            ("masked-fd", "ft-fd", Some("masked")),
            ("masked-fd-online", "ft-fd", Some("masked")),
            ("lp-ft", "lp-ft", None),
        ] {
            let path = dir.join(model).join(format!("{name}.toml"));
            let cfg = cfkit_trainer::TrainConfig::load(&path)?;
            let c = serde_json::to_value(&cfg)?;
            let at = |v: &serde_json::Value| v.as_f64().unwrap();
            assert_eq!(c["train"]["method"], method, "{model}/{name}");
            assert_eq!(c["train"]["epochs"], 10, "{model}/{name}");
            assert_eq!(c["train"]["batch_size"], 512, "{model}/{name}");
            // Validation: the 10,240 rows `just imagenet` holds out with `prepare --holdout`.
            assert_eq!(c["data"]["val_split"], "train-holdout", "{model}/{name}");
            let val_shards = c["data"]["val_shards"]
                .as_str()
                .unwrap_or(c["data"]["shards"].as_str().unwrap());
            assert!(
                val_shards.ends_with(&format!("runs/imagenet/{model}/shards")),
                "{model}/{name}"
            );
            assert_eq!(at(&c["optim"]["weight_decay"]), 0.1, "{model}/{name}");
            assert_eq!(at(&c["optim"]["grad_clip"]), 1.0, "{model}/{name}");
            assert_eq!(at(&c["schedule"]["max_lr"]), 3e-5, "{model}/{name}");
            assert_eq!(at(&c["schedule"]["pct_start"]), 0.02, "{model}/{name}");
            match distill {
                None => assert!(c["distill"].is_null(), "{model}/{name}"),
                Some(images) => {
                    assert_eq!(c["distill"]["images"], images, "{model}/{name}");
                    assert_eq!(at(&c["distill"]["weight"]), 30.0, "{model}/{name}");
                }
            }
            let checkpoint = c["model"]["checkpoint"].as_str().unwrap();
            assert!(
                checkpoint.ends_with(&format!("runs/imagenet/{model}/zeroshot")),
                "{checkpoint}"
            );
        }
    }
    Ok(())
}
