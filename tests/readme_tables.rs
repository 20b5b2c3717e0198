//! Numbers the README quotes are written by the tool that makes them: its `just train` table is
//! `cfkit train`'s own table (`cfkit_trainer::eval::markdown_table`) of the committed
//! `results/train/report.json`, the report of `./just train` on a fresh clone. This test fails
//! when the README and that report differ (`CFKIT_UPDATE_DOCS=1` rewrites the README's block).

use std::path::Path;

use cfkit_schemas::describe::check_generated;
use cfkit_trainer::eval::{background_table, markdown_table};
use cfkit_trainer::run::report::TrainReport;

const BEGIN: &str = "<!-- just train: generated from results/train/report.json -->\n";
const END: &str = "<!-- end of just train -->";

fn table(report: &TrainReport) -> String {
    let best = report
        .best
        .map(|b| {
            format!(
                ", best validation top-1 {:.2} % at step {}",
                100.0 * b.top1,
                b.step
            )
        })
        .unwrap_or_default();
    format!(
        "`{}`: {} steps over {} epochs, {:.0} s of training{best}.\n\n{}{}\n",
        report.method,
        report.steps,
        report.epochs,
        report.train_seconds,
        markdown_table(&report.eval),
        background_table(&report.eval)
    )
}

#[test]
fn the_readme_quotes_the_committed_just_train_report() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("results/train/report.json")).unwrap();
    let report: TrainReport = serde_json::from_str(&text).unwrap();
    let update = std::env::var_os("CFKIT_UPDATE_DOCS").is_some();
    let path = root.join("README.md");
    if let Err(e) = check_generated(&path, Some((BEGIN, END)), &table(&report), update) {
        panic!("{e}");
    }
}
