//! Identity hashes, the one definition behind every hash cfkit records of a config or a
//! dataset (a manifest's `config_hash`, a run's `config_hash`, a split's fingerprint): blake3
//! (hex) of the value's canonical JSON — serde's serialisation with every object's keys sorted
//! and no whitespace — so the same value hashes the same whatever the order of fields in a file
//! or a struct, and a hash can be recomputed from a record in another language
//! (`json.dumps(v, sort_keys=True, separators=(",", ":"))` in Python gives the same text for the
//! ASCII strings, integers and floats cfkit writes).

use serde::Serialize;
use serde_json::Value;

/// `value` as canonical JSON: object keys sorted at every level, compact.
pub(crate) fn canonical_json(value: &impl Serialize) -> String {
    fn sorted(v: Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut entries: Vec<(String, Value)> =
                    m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().collect())
            }
            Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    let v = serde_json::to_value(value).expect("identities serialise to JSON");
    sorted(v).to_string()
}

/// blake3 (hex) of [`canonical_json`].
pub fn identity_hash(value: &impl Serialize) -> String {
    blake3::hash(canonical_json(value).as_bytes())
        .to_hex()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": null}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a": {"x": null, "y": [1, 2]}, "b": 1}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"x":null,"y":[1,2]},"b":1}"#);
        assert_eq!(identity_hash(&a), identity_hash(&b));
        assert_ne!(
            identity_hash(&a),
            identity_hash(&serde_json::json!({"b": 2}))
        );
    }
}
