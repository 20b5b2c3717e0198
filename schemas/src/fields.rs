//! Column names and Arrow types shared by the shard schemas (schema version 1).

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields};

/// Version of the shard and manifest schemas written by this cfkit.
pub const SCHEMA_VERSION: u32 = 1;

pub const ID: &str = "id";
pub(crate) const LABEL: &str = "label";
pub(crate) const CLASS_NAME: &str = "class_name";
pub(crate) const SOURCE_BLAKE3: &str = "source_blake3";
pub(crate) const ORIG_WIDTH: &str = "orig_width";
pub(crate) const ORIG_HEIGHT: &str = "orig_height";
pub(crate) const IMAGE: &str = "image";
pub(crate) const IMAGE_BYTES: &str = "bytes";
pub(crate) const IMAGE_PATH: &str = "path";
pub(crate) const TEACHER_FEATURE: &str = "teacher_feature";
pub(crate) const TEACHER_LOGITS: &str = "teacher_logits";
pub const CAM: &str = "cam";
pub const VARIANTS: &str = "variants";
pub(crate) const VARIANT: &str = "variant";
pub const STRATEGY: &str = "strategy";
pub(crate) const MASK: &str = "mask";
pub(crate) const DONOR_IDS: &str = "donor_ids";
pub(crate) const SEED: &str = "seed";
/// The columns a counterfactual shard adds to an image shard's: a run without stored teacher
/// targets reads neither (`ShardReader::read_row_group_except`).
pub const COUNTERFACTUAL_COLUMNS: [&str; 4] = [TEACHER_FEATURE, TEACHER_LOGITS, CAM, VARIANTS];
/// Name of list elements (Parquet's LIST convention).
pub(crate) const ELEMENT: &str = "element";

/// The Hugging Face Image struct: `struct<bytes: binary, path: string>`.
pub(crate) fn image_fields() -> Fields {
    Fields::from(vec![
        Field::new(IMAGE_BYTES, DataType::Binary, true),
        Field::new(IMAGE_PATH, DataType::Utf8, true),
    ])
}

pub(crate) fn image_type() -> DataType {
    DataType::Struct(image_fields())
}

/// `fixed_size_list<float32>[len]`.
pub(crate) fn f32_vector(len: i32) -> DataType {
    DataType::FixedSizeList(Arc::new(Field::new(ELEMENT, DataType::Float32, false)), len)
}

/// `fixed_size_list<bool>[len]`.
pub(crate) fn bool_vector(len: i32) -> DataType {
    DataType::FixedSizeList(Arc::new(Field::new(ELEMENT, DataType::Boolean, false)), len)
}

/// `list<string>`.
pub(crate) fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new(ELEMENT, DataType::Utf8, false)))
}

/// A top-level column. Arrow's nullable flag is set on every top-level column because Hugging
/// Face `datasets` only applies its features (Image, ClassLabel) to nullable fields; which
/// columns may actually hold nulls is [`nulls_allowed`], and the reader enforces it.
fn column(name: &str, t: DataType) -> Field {
    Field::new(name, t, true)
}

/// Whether cfkit writes (and accepts) nulls in a column.
pub(crate) fn nulls_allowed(name: &str) -> bool {
    name == TEACHER_LOGITS
}

/// The columns every shard starts with.
pub(crate) fn image_columns() -> Vec<Field> {
    vec![
        column(ID, DataType::Utf8),
        column(LABEL, DataType::Int64),
        column(CLASS_NAME, DataType::Utf8),
        column(SOURCE_BLAKE3, DataType::Utf8),
        column(ORIG_WIDTH, DataType::Int32),
        column(ORIG_HEIGHT, DataType::Int32),
        column(IMAGE, image_type()),
    ]
}

/// Fields of one counterfactual variant.
pub(crate) fn variant_fields(num_patches: i32, feature_dim: i32) -> Fields {
    Fields::from(vec![
        Field::new(VARIANT, DataType::Int32, false),
        Field::new(STRATEGY, DataType::Utf8, false),
        Field::new(MASK, bool_vector(num_patches), false),
        Field::new(DONOR_IDS, string_list(), false),
        Field::new(SEED, DataType::UInt64, false),
        Field::new(IMAGE, image_type(), false),
        Field::new(TEACHER_FEATURE, f32_vector(feature_dim), false),
    ])
}

/// The columns a counterfactual shard adds to [`image_columns`].
pub(crate) fn counterfactual_columns(
    num_patches: i32,
    feature_dim: i32,
    num_classes: i32,
) -> Vec<Field> {
    vec![
        column(TEACHER_FEATURE, f32_vector(feature_dim)),
        column(TEACHER_LOGITS, f32_vector(num_classes)),
        column(CAM, f32_vector(num_patches)),
        column(
            VARIANTS,
            DataType::List(Arc::new(Field::new(
                ELEMENT,
                DataType::Struct(variant_fields(num_patches, feature_dim)),
                false,
            ))),
        ),
    ]
}

/// What each column holds, for the generated schema description.
pub(crate) fn column_doc(name: &str) -> &'static str {
    match name {
        ID => "stable sample id (relative source path, or `<generator>/<split>/<index>`)",
        LABEL => "class index into the dataset's class list (Hugging Face ClassLabel)",
        CLASS_NAME => "class name of `label`",
        SOURCE_BLAKE3 => "blake3 (hex) of the source file's bytes (or of the generated pixels)",
        ORIG_WIDTH => "width of the source image before preprocessing, pixels",
        ORIG_HEIGHT => "height of the source image before preprocessing, pixels",
        IMAGE => "preprocessed image (uint8 RGB PNG, S×S) as the Hugging Face Image struct",
        TEACHER_FEATURE => "teacher's projected image feature (not L2-normalised)",
        TEACHER_LOGITS => "teacher's logits over the classes (null when not stored)",
        CAM => "per-patch class-activation score for `label`, max-normalised, row-major patch grid",
        VARIANTS => "the K counterfactual variants of this image",
        VARIANT => "variant index k in 0..K",
        STRATEGY => "mask and fill strategy, e.g. `ObjMaskSingleFill(0.3)`",
        MASK => "per-patch mask (true = masked), row-major patch grid",
        DONOR_IDS => "ids of the donor images: one for single fill, one per patch for multi fill, none for no fill",
        SEED => "seed from which the mask/donor draw of this variant is recomputed",
        crate::truth::BG_FAMILY => {
            "generator's background family of the image (FashionShift: family c is class c's)"
        }
        crate::truth::OBJECT_MASK => {
            "generator's object (garment) mask, S×S pixels row-major, true = object"
        }
        _ => "",
    }
}
