//! Dataset-level metadata, written both into the Arrow schema metadata (pyarrow shows it) and as
//! plain Parquet key-value pairs (DuckDB's `parquet_kv_metadata` shows them), and the Hugging Face
//! `huggingface` features JSON that makes `datasets` show images and class labels.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::fields::*;

/// Arrow/Parquet metadata key holding the schema version.
pub const KEY_SCHEMA_VERSION: &str = "cfkit.schema_version";
/// Key holding the [`DatasetInfo`] JSON.
pub const KEY_DATASET: &str = "cfkit.dataset";
/// Key of the Hugging Face features JSON.
pub const KEY_HUGGINGFACE: &str = "huggingface";

/// What a shard holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShardKind {
    /// Preprocessed images with labels.
    Images,
    /// Images with teacher features, CAMs and counterfactual variants.
    Counterfactuals,
}

/// The teacher a counterfactual dataset was built with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TeacherInfo {
    /// Preset or config name.
    pub model: String,
    /// blake3 of the weights file.
    pub weights_blake3: String,
    /// blake3 of the head file.
    pub head_blake3: String,
}

/// How a counterfactual dataset's variants were drawn (fields in the order of their names, as
/// the JSON of every shard has them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CounterfactualMethod {
    /// Images per builder batch, the donor pool of their draws.
    pub batch_size: usize,
    /// The CAM of the masks: `mmcam`, `gradcam` or `rollout`.
    pub cam: String,
    /// Where donors come from (`batch`: the builder batch).
    pub donor_pool: String,
    /// The version of the mask and donor draws' semantics.
    pub draw_version: u32,
    /// Strategies in variant order, e.g. `ObjMaskSingleFill(0.3)`.
    pub strategies: Vec<String>,
    /// `compact`: variants stored without pixels (the loader recomposes them); absent:
    /// materialized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_pixels: Option<String>,
    /// Variants per strategy and image.
    pub variants_per_strategy: usize,
}

impl CounterfactualMethod {
    /// Whether variants are stored without pixels.
    pub fn compact(&self) -> bool {
        self.variant_pixels.as_deref() == Some("compact")
    }
}

/// Dataset-level facts stored with every shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetInfo {
    pub schema_version: u32,
    pub kind: ShardKind,
    pub split: String,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// Side of the stored square images, pixels.
    pub image_size: u32,
    /// How the stored images were made from the sources.
    pub preprocessing: String,
    /// The resize that made the stored pixels (left out when it is CLIP's, the default).
    #[serde(default, skip_serializing_if = "crate::resize::Resize::is_clip")]
    pub resize: crate::resize::Resize,
    /// Where the rows come from (source description).
    pub source: String,
    #[serde(default)]
    pub seed: Option<u64>,
    /// blake3 of the resolved config that produced the dataset.
    #[serde(default)]
    pub config_hash: Option<String>,
    #[serde(default)]
    pub teacher: Option<TeacherInfo>,
    /// Counterfactual datasets: how the variants were drawn.
    #[serde(default)]
    pub method: Option<CounterfactualMethod>,
    /// Every row carries the generator's ground truth (`bg_family`, `object_mask`; see
    /// [`crate::truth`]).
    #[serde(default)]
    pub scene_truth: bool,
}

impl DatasetInfo {
    /// Plain key-value pairs: the version, the JSON, and a few flat keys for SQL users.
    pub(crate) fn key_values(&self, schema: &Schema) -> Vec<(String, String)> {
        let mut kv = vec![
            (
                KEY_SCHEMA_VERSION.to_string(),
                self.schema_version.to_string(),
            ),
            (
                KEY_DATASET.to_string(),
                serde_json::to_string(self).expect("dataset info serialises"),
            ),
            (
                "cfkit.kind".to_string(),
                serde_json::to_value(self.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            ("cfkit.split".to_string(), self.split.clone()),
            (
                "cfkit.num_classes".to_string(),
                self.classes.len().to_string(),
            ),
            (
                "cfkit.preprocessing".to_string(),
                self.preprocessing.clone(),
            ),
        ];
        if let Some(seed) = self.seed {
            kv.push(("cfkit.seed".into(), seed.to_string()));
        }
        if let Some(h) = &self.config_hash {
            kv.push(("cfkit.config_hash".into(), h.clone()));
        }
        if let Some(t) = &self.teacher {
            kv.push(("cfkit.teacher".into(), t.model.clone()));
            kv.push(("cfkit.teacher_blake3".into(), t.weights_blake3.clone()));
        }
        if let Some(m) = &self.method {
            let text = serde_json::to_string(m).expect("the method serialises");
            kv.push(("cfkit.method".into(), text));
        }
        kv.push((
            KEY_HUGGINGFACE.to_string(),
            hf_features(self, schema).to_string(),
        ));
        kv
    }
}

fn value(dtype: &str) -> serde_json::Value {
    json!({"dtype": dtype, "_type": "Value"})
}

fn hf_feature(field: &Field, info: &DatasetInfo) -> serde_json::Value {
    use arrow_schema::DataType as T;
    match (field.name().as_str(), field.data_type()) {
        (LABEL, _) => json!({"names": info.classes, "_type": "ClassLabel"}),
        (IMAGE, T::Struct(_)) => json!({"_type": "Image"}),
        (_, T::Utf8) => value("string"),
        (_, T::Int64) => value("int64"),
        (_, T::Int32) => value("int32"),
        (_, T::UInt64) => value("uint64"),
        (_, T::Float32) => value("float32"),
        (_, T::Boolean) => value("bool"),
        (_, T::FixedSizeList(inner, n)) => {
            json!({"feature": hf_feature(inner, info), "length": n, "_type": "List"})
        }
        (_, T::List(inner)) => json!({"feature": hf_feature(inner, info), "_type": "List"}),
        (_, T::Struct(fields)) => serde_json::Value::Object(
            fields
                .iter()
                .map(|f| (f.name().clone(), hf_feature(f, info)))
                .collect(),
        ),
        (_, other) => value(&other.to_string().to_lowercase()),
    }
}

/// The `huggingface` metadata JSON: `{"info": {"features": {...}}}`.
pub(crate) fn hf_features(info: &DatasetInfo, schema: &Schema) -> serde_json::Value {
    let features: serde_json::Map<String, serde_json::Value> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), hf_feature(f, info)))
        .collect();
    json!({"info": {"features": features}})
}

/// Sizes a counterfactual schema needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterfactualDims {
    pub num_patches: i32,
    pub feature_dim: i32,
}

/// The Arrow schema of a shard of `info.kind`, with the metadata attached.
pub fn shard_schema(info: &DatasetInfo, dims: Option<CounterfactualDims>) -> SchemaRef {
    let mut fields = image_columns();
    if info.kind == ShardKind::Counterfactuals {
        let d = dims.expect("counterfactual shards need their dimensions");
        fields.extend(counterfactual_columns(
            d.num_patches,
            d.feature_dim,
            info.classes.len() as i32,
        ));
    }
    if info.scene_truth {
        fields.extend(crate::truth::truth_columns(info.image_size));
    }
    let bare = Schema::new(fields.clone());
    let meta: HashMap<String, String> = info.key_values(&bare).into_iter().collect();
    Arc::new(Schema::new_with_metadata(fields, meta))
}
