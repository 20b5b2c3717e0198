//! `schemas/RECORDS.md`, the reference of every JSON record cfkit writes (and the JSON its
//! commands print), is generated here from the record types themselves — their fields, types and
//! doc comments, through `schemars` — and this test fails when the committed file and the types
//! drift apart (`CFKIT_UPDATE_DOCS=1` rewrites it). tools/cfkit_tools/records.py reads the same
//! files by these keys.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use schemars::{schema_for, Schema};
use serde_json::Value;

use cfkit_pipeline::builder::merge::MergeReport;
use cfkit_pipeline::builder::{done::Marker, record as build, BuildReport};
use cfkit_pipeline::inspect::InspectReport;
use cfkit_pipeline::prepare::record::{DatasetRecord, DemoDataIdentity, PrepareIdentity};
use cfkit_pipeline::prepare::split_writer::Rejected;
use cfkit_schemas::verify::VerifyReport;
use cfkit_schemas::Manifest;
use cfkit_trainer::checkpoint::CheckpointInfo;
use cfkit_trainer::eval::suite::SuiteReport;
use cfkit_trainer::eval::EvalReport;
use cfkit_trainer::run::metrics::{MetricsLine, QuarantineLine};
use cfkit_trainer::run::profile::Profile;
use cfkit_trainer::run::record::RunRecord;
use cfkit_trainer::run::report::TrainReport;
use cfkit_trainer::wise_ft::WiseFtReport;

/// (its name here, where the record is, what writes it, its schema)
fn records() -> Vec<(&'static str, &'static str, &'static str, Schema)> {
    vec![
        ("RunRecord", "`run.json` of a training run", "`cfkit train`", schema_for!(RunRecord)),
        ("MetricsLine", "`metrics.jsonl` of a training run, one line each", "`cfkit train`", schema_for!(MetricsLine)),
        ("QuarantineLine", "`quarantine.jsonl` of a training run, one line each", "`cfkit train`", schema_for!(QuarantineLine)),
        ("CheckpointInfo", "`checkpoints/{last,best}/checkpoint.json`, and every checkpoint directory's", "`cfkit train`, `wise-ft`, `convert`", schema_for!(CheckpointInfo)),
        ("TrainReport", "`report.json` of a training run; also `cfkit train --json`", "`cfkit train`", schema_for!(TrainReport)),
        ("Profile", "`profile.json` of a training run", "`cfkit train --profile`", schema_for!(Profile)),
        ("EvalReport", "`cfkit eval --json` (shard splits or an ImageFolder)", "`cfkit eval`", schema_for!(EvalReport)),
        ("SuiteReport", "`suite-<name>.json`; also `cfkit eval --suite … --json`", "`cfkit eval --suite`, `wise-ft --suite`", schema_for!(SuiteReport)),
        ("WiseFtReport", "`wise-ft.json`", "`cfkit wise-ft`", schema_for!(WiseFtReport)),
        ("BuildRecord", "`run.json` (or `run.worker-I-of-N.json`) of a counterfactual build", "`cfkit build-counterfactuals`", schema_for!(build::BuildRecord)),
        ("Marker", "`done.json` (or `done.worker-I-of-N.json`) of a counterfactual build", "`cfkit build-counterfactuals`", schema_for!(Marker)),
        ("BuildQuarantineLine", "`quarantine/<shard>.jsonl` of a counterfactual build, one line each", "`cfkit build-counterfactuals`", schema_for!(build::BuildQuarantineLine)),
        ("PrepareRecord", "`run.json` of an image dataset made by `prepare`", "`cfkit prepare`", schema_for!(DatasetRecord<PrepareIdentity>)),
        ("DemoDataRecord", "`run.json` of an image dataset made by `demo-data`", "`cfkit demo-data`", schema_for!(DatasetRecord<DemoDataIdentity>)),
        ("Rejected", "`quarantine-<split>.jsonl` of an image dataset, one line each", "`cfkit prepare`", schema_for!(Rejected)),
        ("Manifest", "`manifest.json` of every dataset (its `config` is the identity of the dataset's kind: `PrepareIdentity`, `DemoDataIdentity` or `BuildIdentity`)", "every command that writes shards", schema_for!(Manifest)),
        ("VerifyReport", "`cfkit verify --json`", "`cfkit verify`", schema_for!(VerifyReport)),
        ("InspectReport", "`cfkit inspect --json`", "`cfkit inspect`", schema_for!(InspectReport)),
        ("BuildReport", "the report of a build (in `run.json` and `done.json`)", "`cfkit build-counterfactuals`", schema_for!(BuildReport)),
        ("MergeReport", "what `cfkit merge` reports", "`cfkit merge`", schema_for!(MergeReport)),
    ]
}

fn one_line(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn def_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// A type in words, naming the definitions it refers to.
fn ty(s: &Value, used: &mut BTreeSet<String>) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let n = def_name(r).to_string();
        used.insert(n.clone());
        return format!("[{n}](#{})", n.to_lowercase());
    }
    if let Some(c) = s.get("const") {
        return format!("`{c}`");
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let v: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        return v.join(" \\| ");
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let v: Vec<String> = alts.iter().map(|a| ty(a, used)).collect();
            return v.join(" or ");
        }
    }
    let one = |t: &str, used: &mut BTreeSet<String>| match t {
        "array" => match s.get("items") {
            Some(items) => format!("list of {}", ty(items, used)),
            None => "list".into(),
        },
        "object" => match s.get("additionalProperties") {
            Some(v) if v.is_object() => format!("map of string to {}", ty(v, used)),
            _ => "object".into(),
        },
        other => other.into(),
    };
    match s.get("type") {
        Some(Value::String(t)) => one(t, used),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(|t| one(t, used))
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any JSON".into(),
    }
}

/// The fields of an object schema as table rows.
fn fields(s: &Value, used: &mut BTreeSet<String>) -> String {
    let Some(props) = s.get("properties").and_then(Value::as_object) else {
        return String::new();
    };
    let required: BTreeSet<&str> = s
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = String::from("| field | type | description |\n|---|---|---|\n");
    for (name, p) in props {
        let opt = if required.contains(name.as_str()) {
            ""
        } else {
            " (optional)"
        };
        let doc = p.get("description").and_then(Value::as_str).unwrap_or("");
        out += &format!("| `{name}` | {}{opt} | {} |\n", ty(p, used), one_line(doc));
    }
    out
}

/// A definition: its description, then its fields, or its variants and theirs.
fn definition(s: &Value, used: &mut BTreeSet<String>) -> String {
    let mut out = String::new();
    if let Some(d) = s.get("description").and_then(Value::as_str) {
        out += &format!("{}\n\n", one_line(d));
    }
    out += &fields(s, used);
    for key in ["oneOf", "anyOf"] {
        let Some(alts) = s.get(key).and_then(Value::as_array) else {
            continue;
        };
        for a in alts {
            let doc = a.get("description").and_then(Value::as_str).map(one_line);
            if let Some(props) = a.get("properties").and_then(Value::as_object) {
                let tag = props
                    .iter()
                    .find_map(|(k, p)| p.get("const").map(|c| format!("`{k}` = `{c}`")))
                    .unwrap_or_else(|| "one form".into());
                let doc = doc.map(|d| format!(": {d}")).unwrap_or_default();
                out += &format!("\n**{tag}**{doc}\n\n{}", fields(a, used));
            } else {
                out += &format!(
                    "- {}{}\n",
                    ty(a, used),
                    doc.map(|d| format!(": {d}")).unwrap_or_default()
                );
            }
        }
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let v: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        out += &format!("One of {}.\n", v.join(", "));
    }
    if out.trim().is_empty() {
        out += &format!("{}\n", ty(s, used));
    }
    out
}

fn render() -> String {
    let mut out = String::from(
        "# The records cfkit writes\n\n\
         Generated from the record types by `cargo test --test records_reference` (set \
         `CFKIT_UPDATE_DOCS=1` to rewrite); the test fails when this file and the types drift \
         apart. Every file below is written and read back through its type only; \
         `tools/cfkit_tools/records.py` is the one reader of the Python tools. The shards' own \
         columns and metadata are in [SCHEMA.md](SCHEMA.md).\n\n\
         ## Files\n\n| record | written by | type |\n|---|---|---|\n",
    );
    let mut defs: BTreeMap<String, Value> = BTreeMap::new();
    let mut roots = String::new();
    let mut used = BTreeSet::new();
    for (name, what, by, schema) in records() {
        let v = schema.as_value();
        out += &format!("| {what} | {by} | [{name}](#{}) |\n", name.to_lowercase());
        if let Some(d) = v.get("$defs").and_then(Value::as_object) {
            for (k, d) in d {
                defs.entry(k.clone()).or_insert_with(|| d.clone());
            }
        }
        roots += &format!("### {name}\n\n{}\n", definition(v, &mut used));
    }
    // A root that other records use too is documented once, as a record.
    for (name, ..) in records() {
        defs.remove(name);
    }
    out += "\n## Records\n\n";
    out += &roots;
    out += "## Types they use\n\n";
    for (name, d) in &defs {
        out += &format!("### {name}\n\n{}\n", definition(d, &mut used));
    }
    out
}

#[test]
fn records_md_is_generated_from_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/RECORDS.md");
    let update = std::env::var_os("CFKIT_UPDATE_DOCS").is_some();
    if let Err(e) = cfkit_schemas::describe::check_generated(&path, None, &render(), update) {
        panic!("{e}");
    }
}
