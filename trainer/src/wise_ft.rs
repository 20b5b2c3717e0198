//! WiSE-FT (Wortsman et al. 2022, DESIGN §3): `θ(α) = (1-α)·θ_zeroshot + α·θ_finetuned` over all
//! weights (vision tower and head), written as checkpoints and evaluated on the configured sets.
//!
//! Output directory:
//! ```text
//! alpha-0.50/          the interpolated checkpoint (loads like any cfkit checkpoint)
//! wise-ft.json         per α: the evaluation of every set, ID and OOD means
//! wise-ft.md           the same as a table
//! ```

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::Device;

use crate::checkpoint::{self, CheckpointInfo, Derived, SourceCheckpoint};
use crate::config::{ResolvedEvalSet, TrainConfig};
use crate::error::{Result, TrainError};
use crate::eval::{EvalReport, Evaluator};
use crate::student::Student;

/// Parses `start:stop:step` (inclusive of `stop` up to rounding) or a comma list `0,0.5,1`.
/// The evaluation sets of a sweep: those of the train config `config`, else those of the
/// fine-tuned run's record (`run.json` two directories above the checkpoint `finetuned`).
pub fn eval_sets_for(finetuned: &Path, config: Option<&Path>) -> Result<Vec<ResolvedEvalSet>> {
    if let Some(path) = config {
        return Ok(TrainConfig::load(path)?.eval_sets());
    }
    let run = finetuned
        .parent()
        .and_then(|p| p.parent())
        .map(|d| d.join(crate::run::dir::RUN_FILE))
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            TrainError::Config(format!(
                "no --config and no run.json two directories above '{}' to take the evaluation \
                 sets from",
                finetuned.display()
            ))
        })?;
    let dir = run.parent().unwrap_or(Path::new("."));
    let cfg = crate::run::record::RunRecord::read(dir)?.config;
    Ok(cfg.eval_sets())
}

pub fn parse_alphas(spec: &str) -> Result<Vec<f64>> {
    let bad = |why: &str| {
        TrainError::Config(format!(
            "--alpha '{spec}': {why} (expected start:stop:step like 0:1:0.1, or a list like 0,0.5,1)"
        ))
    };
    let num = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| bad(&format!("'{s}' is not a number")))
    };
    let alphas: Vec<f64> = if spec.contains(':') {
        let parts: Vec<&str> = spec.split(':').collect();
        let [a, b, step] = parts.as_slice() else {
            return Err(bad("a range has three parts"));
        };
        let (a, b, step) = (num(a)?, num(b)?, num(step)?);
        if step.is_nan() || step <= 0.0 || b < a {
            return Err(bad("step must be > 0 and stop >= start"));
        }
        let n = ((b - a) / step + 1e-9).floor() as usize;
        // Rounded to 1e-9 so that 0:1:0.1 gives 0.3, not 0.30000000000000004.
        (0..=n)
            .map(|i| ((a + i as f64 * step) * 1e9).round() / 1e9)
            .collect()
    } else {
        spec.split(',').map(num).collect::<Result<_>>()?
    };
    if alphas.is_empty() || alphas.iter().any(|a| !a.is_finite()) {
        return Err(bad("no finite values"));
    }
    Ok(alphas)
}

/// One interpolation and its evaluation.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct WiseFtPoint {
    /// The weight of the fine-tuned model.
    pub alpha: f64,
    /// The interpolated checkpoint's directory.
    pub checkpoint: PathBuf,
    /// Its evaluation.
    pub eval: EvalReport,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct WiseFtReport {
    /// The zero-shot checkpoint (α = 0).
    pub zeroshot: PathBuf,
    /// The fine-tuned checkpoint (α = 1).
    pub finetuned: PathBuf,
    /// Per α: its checkpoint and evaluation.
    pub points: Vec<WiseFtPoint>,
}

/// Sets every variable of `out` to `(1-α)·a + α·b` (same names and shapes, checked).
pub fn interpolate(out: &mut Student, a: &Student, b: &Student, alpha: f64) -> Result<()> {
    let (va, vb) = (a.vs.variables(), b.vs.variables());
    let _g = tch::no_grad_guard();
    for (name, mut t) in out.vs.variables() {
        let (Some(x), Some(y)) = (va.get(&name), vb.get(&name)) else {
            return Err(TrainError::Data(format!(
                "variable '{name}' is missing in a checkpoint"
            )));
        };
        if x.size() != t.size() || y.size() != t.size() {
            return Err(TrainError::Data(format!(
                "variable '{name}' has shapes {:?} and {:?}",
                x.size(),
                y.size()
            )));
        }
        t.copy_(&(x * (1.0 - alpha) + y * alpha));
    }
    Ok(())
}

/// Writes and evaluates `θ(α)` for every α.
pub fn wise_ft(
    zeroshot: &Path,
    finetuned: &Path,
    alphas: &[f64],
    out: &Path,
    sets: &[ResolvedEvalSet],
    batch_size: usize,
    device: Device,
) -> Result<WiseFtReport> {
    let (zs, zs_info) = checkpoint::load_student(zeroshot, device)?;
    let (ft, ft_info) = checkpoint::load_student(finetuned, device)?;
    if zs.config() != ft.config() || zs.classes != ft.classes {
        return Err(TrainError::checkpoint(
            finetuned,
            format!(
                "is not the same model as '{}' (architecture or classes differ)",
                zeroshot.display()
            ),
        ));
    }
    // One writer per output directory, for the whole sweep (this also creates it).
    let _lock = cfkit_outdir::DirLock::acquire(out, "")?;
    let (mut mix, _) = checkpoint::load_student(zeroshot, device)?;
    mix.model.clone_from(&ft_info.model);
    let mut points = Vec::new();
    for &alpha in alphas {
        interpolate(&mut mix, &zs, &ft, alpha)?;
        let dir = out.join(format!("alpha-{alpha:.2}"));
        let source = |dir: &Path, info: &CheckpointInfo| SourceCheckpoint {
            dir: dir.to_path_buf(),
            weights_blake3: info.weights_blake3.clone(),
            head_blake3: info.head_blake3.clone(),
        };
        let derived = Derived::WiseFt {
            alpha,
            zeroshot: source(zeroshot, &zs_info),
            finetuned: source(finetuned, &ft_info),
        };
        let info = CheckpointInfo::derived(&mix, "wise-ft", derived);
        checkpoint::save(&dir, &mix, "wise-ft", None, info)?;
        let eval = Evaluator::new(&mix, batch_size, device).sets(sets)?;
        points.push(WiseFtPoint {
            alpha,
            checkpoint: dir,
            eval,
        });
    }
    let report = WiseFtReport {
        zeroshot: zeroshot.to_path_buf(),
        finetuned: finetuned.to_path_buf(),
        points,
    };
    write_report(out, &report)?;
    Ok(report)
}

/// Writes `wise-ft.json` and `wise-ft.md` into `out` (again, after a caller re-scored the
/// points, e.g. on an evaluation suite).
pub fn write_report(out: &Path, report: &WiseFtReport) -> Result<()> {
    let json = serde_json::to_string_pretty(report).expect("report serialises");
    let path = out.join("wise-ft.json");
    std::fs::write(&path, json + "\n").map_err(|e| TrainError::io(&path, e))?;
    let path = out.join("wise-ft.md");
    std::fs::write(&path, markdown(report)).map_err(|e| TrainError::io(&path, e))
}

/// One row per α, one column per set, then the ID and OOD means (top-1 %).
pub fn markdown(report: &WiseFtReport) -> String {
    let Some(first) = report.points.first() else {
        return String::new();
    };
    let names: Vec<&str> = first.eval.sets.iter().map(|s| s.name.as_str()).collect();
    let mut s = format!("| α | {} | ID mean | OOD mean |\n", names.join(" | "));
    s += &format!("|---:|{}---:|---:|\n", "---:|".repeat(names.len()));
    let pct = |v: Option<f64>| v.map(|v| format!("{:.2}", 100.0 * v)).unwrap_or("–".into());
    for p in &report.points {
        let cells: Vec<String> = p
            .eval
            .sets
            .iter()
            .map(|r| format!("{:.2}", 100.0 * r.correct as f64 / r.images.max(1) as f64))
            .collect();
        s += &format!(
            "| {:.2} | {} | {} | {} |\n",
            p.alpha,
            cells.join(" | "),
            pct(p.eval.id_mean),
            pct(p.eval.ood_mean)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_specs_parse_and_bad_ones_are_explained() {
        let a = parse_alphas("0:1:0.1").unwrap();
        assert_eq!(a.len(), 11);
        assert_eq!(a[3], 0.3);
        assert_eq!(a[10], 1.0);
        assert_eq!(parse_alphas("0,0.5,1").unwrap(), vec![0.0, 0.5, 1.0]);
        assert_eq!(parse_alphas("0.5").unwrap(), vec![0.5]);
        for bad in ["1:0:0.1", "0:1:0", "0:1", "a,b", ""] {
            let e = parse_alphas(bad).unwrap_err().to_string();
            assert!(e.contains("--alpha"), "{bad}: {e}");
        }
    }
}
