//! Round trips of both shard kinds and of the manifest, corrupt shards, and the schema
//! description's drift check.

use std::path::{Path, PathBuf};

use anyhow::Result;
use cfkit_schemas::layout::{shard_relpath, MANIFEST_FILE};
use cfkit_schemas::metadata::{KEY_DATASET, KEY_HUGGINGFACE, KEY_SCHEMA_VERSION};
use cfkit_schemas::*;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cfkit-schemas-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn info(kind: ShardKind, classes: &[&str]) -> DatasetInfo {
    DatasetInfo {
        schema_version: SCHEMA_VERSION,
        kind,
        split: "train".into(),
        classes: classes.iter().map(|s| s.to_string()).collect(),
        image_size: 8,
        preprocessing: "resize-shorter-bicubic(8)+center-crop(8)".into(),
        resize: Default::default(),
        source: "test".into(),
        seed: Some(7),
        config_hash: Some("abc".into()),
        teacher: Some(TeacherInfo {
            model: "tiny".into(),
            weights_blake3: "w".into(),
            head_blake3: "h".into(),
        }),
        method: Some(cfkit_schemas::CounterfactualMethod {
            batch_size: 4,
            cam: "mmcam".into(),
            donor_pool: "batch".into(),
            draw_version: 1,
            strategies: vec!["ObjMaskSingleFill(0.3)".into()],
            variant_pixels: None,
            variants_per_strategy: 2,
        }),
        scene_truth: false,
    }
}

/// Pseudo-random bytes so zstd cannot shrink the image column to nothing.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn image_record(i: usize) -> ImageRecord {
    ImageRecord {
        id: format!("img/{i:04}.png"),
        label: (i % 3) as i64,
        class_name: ["cat", "dog", "eel"][i % 3].into(),
        source_blake3: blake3::hash(&i.to_le_bytes()).to_hex().to_string(),
        orig_width: 100 + i as i32,
        orig_height: 50,
        image: StoredImage {
            bytes: noise(i as u64, 1000 + i),
            path: format!("{i:04}.png"),
        },
        truth: None,
    }
}

fn cf_record(i: usize, p: usize, d: usize) -> CounterfactualRecord {
    CounterfactualRecord {
        base: image_record(i),
        teacher_feature: (0..d).map(|k| (i * d + k) as f32 * 0.5).collect(),
        teacher_logits: if i.is_multiple_of(2) {
            Some(vec![i as f32, -1.0, 2.5])
        } else {
            None
        },
        cam: (0..p).map(|k| k as f32 / p as f32).collect(),
        variants: (0..(i % 3))
            .map(|k| Variant {
                variant: k as i32,
                strategy: "ObjMaskSingleFill(0.3)".into(),
                mask: (0..p).map(|j| (j + k + i).is_multiple_of(3)).collect(),
                donor_ids: (0..k + 1).map(|j| format!("img/{j:04}.png")).collect(),
                seed: 1000 + k as u64,
                image: StoredImage {
                    bytes: noise(99 + k as u64, 300),
                    path: String::new(),
                },
                teacher_feature: vec![k as f32; d],
            })
            .collect(),
    }
}

fn write_shard(
    dir: &Path,
    schema: arrow_schema::SchemaRef,
    batches: &[arrow_array::RecordBatch],
    opts: WriterOptions,
) -> Result<ShardSummary> {
    let mut w = ShardWriter::try_new(dir, &shard_relpath("train", 0, 1), schema, opts)?;
    for b in batches {
        w.write(b)?;
    }
    Ok(w.close()?)
}

#[test]
fn image_shards_round_trip_with_metadata_and_row_groups() -> Result<()> {
    let dir = tmpdir("img");
    let info = info(ShardKind::Images, &["cat", "dog", "eel"]);
    let schema = shard_schema(&info, None);
    let rows: Vec<ImageRecord> = (0..50).map(image_record).collect();
    let batches: Vec<_> = rows
        .chunks(10)
        .map(|c| images_to_batch(&schema, c))
        .collect::<Result<_, _>>()?;
    // Tiny row groups so that several are cut.
    let summary = write_shard(
        &dir,
        schema.clone(),
        &batches,
        WriterOptions {
            row_group_bytes: 20_000,
            ..Default::default()
        },
    )?;
    assert_eq!(summary.rows, 50);
    assert!(summary.row_groups >= 2, "{summary:?}");
    let path = dir.join(&summary.file);
    assert!(path.exists() && !Path::new(&format!("{}.tmp", path.display())).exists());

    let r = ShardReader::open_verified(&path, summary.bytes, &summary.blake3)?;
    assert_eq!(r.info(), &info);
    assert_eq!(r.num_rows(), 50);
    assert_eq!(r.schema().fields(), schema.fields());
    assert_eq!(r.read_images()?, rows);

    // Plain Parquet key-value pairs carry the same metadata (what DuckDB shows).
    let kv = r
        .parquet_metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap();
    let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
    assert_eq!(get(KEY_SCHEMA_VERSION).as_deref(), Some("1"));
    assert_eq!(get("cfkit.split").as_deref(), Some("train"));
    let ds: DatasetInfo = serde_json::from_str(&get(KEY_DATASET).unwrap())?;
    assert_eq!(ds, info);
    let hf: serde_json::Value = serde_json::from_str(&get(KEY_HUGGINGFACE).unwrap())?;
    assert_eq!(hf["info"]["features"]["image"]["_type"], "Image");
    assert_eq!(hf["info"]["features"]["label"]["names"][2], "eel");

    // Image bytes: uncompressed, no statistics; other columns zstd.
    let rg = r.parquet_metadata().row_group(0);
    for col in rg.columns() {
        let path = col.column_path().string();
        if path == "image.bytes" {
            assert_eq!(col.compression(), parquet::basic::Compression::UNCOMPRESSED);
            assert!(col.statistics().is_none(), "statistics on {path}");
            assert!(
                col.dictionary_page_offset().is_none(),
                "dictionary on {path}"
            );
        } else {
            assert!(
                matches!(col.compression(), parquet::basic::Compression::ZSTD(_)),
                "{path}"
            );
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn counterfactual_shards_round_trip_with_variants_and_null_logits() -> Result<()> {
    let dir = tmpdir("cf");
    let (p, d) = (6, 4);
    let info = info(ShardKind::Counterfactuals, &["cat", "dog", "eel"]);
    let schema = shard_schema(
        &info,
        Some(CounterfactualDims {
            num_patches: p as i32,
            feature_dim: d as i32,
        }),
    );
    let rows: Vec<CounterfactualRecord> = (0..17).map(|i| cf_record(i, p, d)).collect();
    let batch = counterfactuals_to_batch(&schema, &rows)?;
    let summary = write_shard(&dir, schema.clone(), &[batch], WriterOptions::default())?;
    let r = ShardReader::open(&dir.join(&summary.file))?;
    assert_eq!(r.read_counterfactuals()?, rows);
    let rg = r.parquet_metadata().row_group(0);
    let nested: Vec<_> = rg
        .columns()
        .iter()
        .map(|c| c.column_path().string())
        .filter(|p| p.ends_with("image.bytes"))
        .collect();
    assert_eq!(nested.len(), 2, "{nested:?}");
    for col in rg
        .columns()
        .iter()
        .filter(|c| c.column_path().string().ends_with("image.bytes"))
    {
        assert_eq!(col.compression(), parquet::basic::Compression::UNCOMPRESSED);
    }
    // A record that does not fit the schema is refused with the reason.
    let mut bad = cf_record(0, p, d);
    bad.cam.push(1.0);
    let err = counterfactuals_to_batch(&schema, &[bad])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cam has 7 values, the schema says 6"), "{err}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn projected_reads_keep_every_other_column_and_select_variants() -> Result<()> {
    use cfkit_schemas::fields::{COUNTERFACTUAL_COLUMNS, VARIANTS};
    let dir = tmpdir("projection");
    let (p, d) = (6, 4);
    let info = info(ShardKind::Counterfactuals, &["cat", "dog", "eel"]);
    let dims = CounterfactualDims {
        num_patches: p as i32,
        feature_dim: d as i32,
    };
    let schema = shard_schema(&info, Some(dims));
    // Two strategies interleaved, so that selecting one must skip the other's variants.
    let rows: Vec<CounterfactualRecord> = (0..17)
        .map(|i| {
            let mut r = cf_record(i, p, d);
            for (k, v) in r.variants.iter_mut().enumerate() {
                if k % 2 == 1 {
                    v.strategy = "CtxMaskMultiFill(0.3)".into();
                }
            }
            r
        })
        .collect();
    let batch = counterfactuals_to_batch(&schema, &rows)?;
    let summary = write_shard(&dir, schema, &[batch], WriterOptions::default())?;
    let r = ShardReader::open(&dir.join(&summary.file))?;
    let without = |rows: &[CounterfactualRecord], keep: Option<&str>| -> Vec<_> {
        rows.iter()
            .cloned()
            .map(|mut r| {
                r.variants.retain(|v| Some(v.strategy.as_str()) == keep);
                r
            })
            .collect()
    };
    let read = |skip: &[&str], select| -> Result<Vec<CounterfactualRecord>> {
        let mut out = Vec::new();
        for b in r.read_row_group_except(0, 5, skip)? {
            out.extend(batch_to_counterfactuals_select(&b, r.path(), select)?);
        }
        Ok(out)
    };
    // One strategy: only its variants, in stored order; every other field as written.
    let ctx = "CtxMaskMultiFill(0.3)";
    assert_eq!(
        read(&[], VariantSelect::Strategy(ctx))?,
        without(&rows, Some(ctx))
    );
    assert!(rows
        .iter()
        .any(|r| r.variants.iter().any(|v| v.strategy == ctx)));
    // No variants: the column is not read at all, and nothing else changes.
    let batches = r.read_row_group_except(0, 1024, &[VARIANTS, "no-such-column"])?;
    assert!(batches[0].column_by_name(VARIANTS).is_none());
    assert_eq!(
        read(&[VARIANTS], VariantSelect::None)?,
        without(&rows, None)
    );
    // Asking for variants the batch does not hold is an error naming the column and the shard.
    let err = read(&[VARIANTS], VariantSelect::All)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("variants") && err.contains(&summary.file),
        "{err}"
    );
    // The image columns alone read as image records.
    let b = r.read_row_group_except(0, 1024, &COUNTERFACTUAL_COLUMNS)?;
    assert_eq!(b[0].num_columns(), 7);
    let bases: Vec<ImageRecord> = rows.iter().map(|r| r.base.clone()).collect();
    assert_eq!(batch_to_images(&b[0], r.path())?, bases);
    assert!(r.read_row_group_except(1, 8, &[]).is_err());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn corrupt_shards_give_errors_that_name_the_shard() -> Result<()> {
    let dir = tmpdir("corrupt");
    let info = info(ShardKind::Images, &["cat", "dog", "eel"]);
    let schema = shard_schema(&info, None);
    let rows: Vec<ImageRecord> = (0..20).map(image_record).collect();
    let summary = write_shard(
        &dir,
        schema.clone(),
        &[images_to_batch(&schema, &rows)?],
        WriterOptions::default(),
    )?;
    let path = dir.join(&summary.file);
    let good = std::fs::read(&path)?;
    let name = path.file_name().unwrap().to_str().unwrap().to_string();

    // Truncated: the footer is gone.
    std::fs::write(&path, &good[..good.len() / 2])?;
    let err = ShardReader::open(&path).unwrap_err().to_string();
    assert!(err.contains(&name), "{err}");

    // One flipped byte inside the data: caught by the manifest's blake3 even where Parquet itself
    // cannot notice (uncompressed image bytes carry no checksum).
    let mut flipped = good.clone();
    flipped[good.len() / 3] ^= 0x40;
    std::fs::write(&path, &flipped)?;
    let err = ShardReader::open_verified(&path, summary.bytes, &summary.blake3)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&name) && err.contains("does not match the manifest"),
        "{err}"
    );

    // Not a parquet file at all.
    std::fs::write(&path, b"hello")?;
    let err = ShardReader::open(&path).unwrap_err().to_string();
    assert!(err.contains(&name), "{err}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn manifest_round_trips_and_rejects_edits() -> Result<()> {
    let dir = tmpdir("manifest");
    let mut m = Manifest::new(
        ShardKind::Images,
        serde_json::json!({"b": 1, "a": [1, 2]}),
        "cfkit test",
    );
    let shard = ShardSummary {
        file: "data/train-00000-of-00001.parquet".into(),
        rows: 5,
        bytes: 10,
        blake3: "x".into(),
        row_groups: 1,
    };
    m.add_shard("train", &["cat".to_string()], shard.clone());
    m.add_shard("train", &["cat".to_string()], shard); // same file again: replaced, not doubled
    assert_eq!(m.splits["train"].shards.len(), 1);
    assert_eq!(
        m.splits["train"].rows, 5,
        "a replaced shard's rows are not counted twice"
    );
    m.write(&dir)?;
    assert_eq!(Manifest::read(&dir)?, m);
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE))?.replace("\"b\": 1", "\"b\": 2");
    std::fs::write(dir.join(MANIFEST_FILE), text)?;
    let err = Manifest::read(&dir).unwrap_err().to_string();
    assert!(
        err.contains("manifest.json") && err.contains("config_hash"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn schema_description_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("SCHEMA.md");
    let want = cfkit_schemas::describe::schema_markdown();
    let update = std::env::var_os("CFKIT_UPDATE_DOCS").is_some();
    if let Err(e) = cfkit_schemas::describe::check_generated(&path, None, &want, update) {
        panic!("{e}");
    }
}

/// A 4x4-pixel object mask and background family for row `i`.
fn truth(i: usize) -> SceneTruth {
    SceneTruth {
        bg_family: (i % 10) as i32,
        object_mask: (0..16).map(|j| (j + i).is_multiple_of(3)).collect(),
    }
}

#[test]
fn scene_truth_round_trips_through_image_and_counterfactual_shards() -> Result<()> {
    let dir = tmpdir("truth");
    for kind in [ShardKind::Images, ShardKind::Counterfactuals] {
        let mut info = info(kind, &["cat", "dog", "eel"]);
        info.image_size = 4;
        info.scene_truth = true;
        let (p, d) = (4, 5);
        let dims = CounterfactualDims {
            num_patches: p as i32,
            feature_dim: d as i32,
        };
        let schema = shard_schema(&info, Some(dims));
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names[names.len() - 2..], ["bg_family", "object_mask"]);
        let sub = dir.join(format!("{kind:?}"));
        let read_back = |batch| -> Result<ShardReader> {
            write_shard(&sub, schema.clone(), &[batch], WriterOptions::default())?;
            Ok(ShardReader::open(&sub.join(shard_relpath("train", 0, 1)))?)
        };
        if kind == ShardKind::Images {
            let rows: Vec<ImageRecord> = (0..7)
                .map(|i| ImageRecord {
                    truth: Some(truth(i)),
                    ..image_record(i)
                })
                .collect();
            let r = read_back(images_to_batch(&schema, &rows)?)?;
            assert!(r.info().scene_truth);
            assert_eq!(r.read_images()?, rows);
            // A row without its truth cannot be written into such a dataset.
            let mut bad = rows.clone();
            bad[3].truth = None;
            let e = images_to_batch(&schema, &bad).unwrap_err().to_string();
            assert!(e.contains("row 3 has no scene truth"), "{e}");
        } else {
            let rows: Vec<CounterfactualRecord> = (0..7)
                .map(|i| {
                    let mut r = cf_record(i, p, d);
                    r.base.truth = Some(truth(i));
                    r
                })
                .collect();
            let r = read_back(counterfactuals_to_batch(&schema, &rows)?)?;
            assert_eq!(r.read_counterfactuals()?, rows);
            let mut bad = rows.clone();
            bad[2].base.truth.as_mut().unwrap().object_mask.pop();
            let e = counterfactuals_to_batch(&schema, &bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("row 2: object_mask has 15 pixels"), "{e}");
        }
    }
    // A dataset without truth reads as before: no truth on any row.
    let plain = dir.join("plain");
    let info = info(ShardKind::Images, &["cat", "dog", "eel"]);
    let schema = shard_schema(&info, None);
    write_shard(
        &plain,
        schema.clone(),
        &[images_to_batch(&schema, &[image_record(1)])?],
        WriterOptions::default(),
    )?;
    let r = ShardReader::open(&plain.join(shard_relpath("train", 0, 1)))?;
    assert_eq!(r.read_images()?[0].truth, None);
    Ok(())
}
