//! cfkit-schemas: everything about bytes on disk — the shard and manifest schemas (version 1),
//! the shard writer and reader, the manifest, and the generated schema description. No torch,
//! so both stages depend on it and never on each other.

pub mod cf_records;
pub mod codec;
pub mod describe;
pub mod error;
pub mod fields;
pub mod holdout;
pub mod identity;
pub mod layout;
pub mod manifest;
pub mod metadata;
pub mod reader;
pub mod records;
pub mod resize;
pub mod truth;
pub mod verify;
pub mod writer;

pub use cf_records::{batch_to_counterfactuals, batch_to_counterfactuals_select, VariantSelect};
pub use codec::{decode_image, decode_image_sized, encode_png, RgbPixels};
pub use error::{Result, SchemaError};
pub use fields::SCHEMA_VERSION;
pub use identity::identity_hash;
pub use manifest::{Manifest, SplitEntry};
pub use metadata::{
    shard_schema, CounterfactualDims, CounterfactualMethod, DatasetInfo, ShardKind, TeacherInfo,
};
pub use reader::ShardReader;
pub use records::{
    batch_to_images, counterfactuals_to_batch, images_to_batch, CounterfactualRecord, ImageRecord,
    StoredImage, Variant,
};
pub use resize::{Interpolation, Resize, ResizeMode};
pub use truth::SceneTruth;
pub use writer::{ShardSummary, ShardWriter, WriterOptions};
