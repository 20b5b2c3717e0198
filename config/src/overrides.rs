//! `--set section.key=value` overrides of a TOML config, applied before it is deserialised.

use crate::error::ConfigError;

/// Sets `section.key=value` in a parsed config. `value` is a TOML value; anything that does not
/// parse as one is taken as a string. The error names the item and what was expected.
pub(crate) fn apply_override(doc: &mut toml::Table, item: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| ConfigError::Override {
        item: item.to_string(),
        message: why.to_string(),
    };
    let (key, raw) = item
        .split_once('=')
        .ok_or_else(|| bad("expected section.key=value"))?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(bad("empty key"));
    }
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("parsed above"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let (last, parents) = path.split_last().expect("non-empty");
    let mut table = doc;
    for p in parents {
        table = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| bad(&format!("'{p}' is not a table")))?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_toml_or_strings_and_bad_items_are_named() {
        let mut doc = toml::Table::new();
        apply_override(&mut doc, "train.epochs=3").unwrap();
        apply_override(&mut doc, "data.shards=/data/x y").unwrap();
        apply_override(&mut doc, "a.b.c=[1, 2]").unwrap();
        assert_eq!(doc["train"]["epochs"].as_integer(), Some(3));
        assert_eq!(doc["data"]["shards"].as_str(), Some("/data/x y"));
        assert_eq!(doc["a"]["b"]["c"].as_array().unwrap().len(), 2);
        let e = |item: &str| {
            apply_override(&mut toml::Table::new(), item)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(e("novalue"), "--set 'novalue': expected section.key=value");
        assert!(e("train..x=1").contains("empty key"));
        let e = apply_override(&mut doc, "train.epochs.x=1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'epochs' is not a table"), "{e}");
    }
}
