//! cfkit-schemas: everything about bytes on disk (shard and manifest schemas, shard reader and
//! writer, stored-image codecs). No torch, so both stages depend on it. Filled in by the data
//! issue; the crate exists so the workspace has its final shape.
