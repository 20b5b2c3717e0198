//! `just gpu-check --device cpu --smoke` in CI (issue 18): the GPU check script runs every section
//! on the CPU at tiny sizes with this build's binary, so the script that a lent GPU machine runs
//! cannot rot. The CUDA-only parts (bf16 autocast, nvidia-smi memory) are skipped on the CPU and
//! say so in the JSON. The demo section runs FashionShift end to end at 1 % of its size.

mod common;

use anyhow::Result;

#[test]
fn gpu_check_script_runs_every_section_on_the_cpu() -> Result<()> {
    let tmp = common::tmpdir("gpu-check", "smoke");
    let o = common::python_tool("cfkit_tools.gpu_check")
        .args([
            "--cfkit",
            env!("CARGO_BIN_EXE_cfkit"),
            "--device",
            "cpu",
            "--smoke",
            "--out",
        ])
        .arg(&*tmp)
        .output()?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "cfkit_tools.gpu_check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.join("gpu-check.json"))?)?;
    let sections = json["sections"].as_object().unwrap();
    for name in [
        "doctor",
        "parity",
        "bf16",
        "throughput",
        "ft_step",
        "pipeline",
        "methods",
        "ddp",
        "demo",
    ] {
        assert_eq!(sections[name]["ok"], true, "{name}: {}", sections[name]);
    }
    assert!(sections["parity"]["max_abs"].as_f64().unwrap() <= 1e-4);
    assert!(sections["parity"]["bf16_worst_relative"].as_f64().unwrap() <= 0.1);
    assert_eq!(sections["pipeline"]["identical_output"], true);
    // The builder at the recipes' shape (compact, K = 2), both precisions, with warm rates.
    for precision in ["bf16", "tf32"] {
        let row = &sections["pipeline"][format!("compact K=2 {precision}")];
        assert_eq!(row["images"], 48, "{row}");
        assert!(row["warm_images_per_s"].as_f64().unwrap() > 0.0, "{row}");
        let busy = row["warm_device_busy_fraction"].as_f64().unwrap();
        assert!(busy > 0.0 && busy <= 1.0, "{row}");
    }
    // The FT step of both precisions next to PyTorch eager; the step read its statistics back
    // once per logging window (2 steps), not per step.
    for precision in ["bf16", "tf32"] {
        let row = &sections["ft_step"][format!("tiny b8 {precision}")];
        assert!(row["cfkit_images_per_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["pytorch_images_per_s"].as_f64().unwrap() > 0.0, "{row}");
        let reads = row["host_reads"].as_f64().unwrap();
        assert!((1.0..=4.0).contains(&reads), "{row}");
    }
    // bf16 autocast ran on the CPU (libtorch's CPU autocast) next to fp32 on the same data.
    let curves = &sections["bf16"]["curves"];
    assert!(!curves["bf16"].as_array().unwrap().is_empty(), "{curves}");
    assert!(sections["bf16"]["max_rel_diff"].as_f64().unwrap() <= 0.05);
    assert!(
        sections["throughput"]["pytorch_images_per_s"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(sections["ddp"]["gloo"]["backend"], "gloo");
    assert!(sections["ddp"]["gloo"]["max_abs"].as_f64().unwrap() <= 1e-5);
    // The demo section trained FT and the headline on a 1 % FashionShift with counterfactual shards
    // built by this binary; top-1 is a percentage of a 20-image test split.
    for run in ["ft", "fd-objmasksinglefill-0.3-w0.3"] {
        let top1 = sections["demo"]["runs"][run]["test_id"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&top1), "{run}: {top1}");
    }
    assert_eq!(sections["demo"]["build"]["rows"], 100);
    let md = std::fs::read_to_string(tmp.join("gpu-check.md"))?;
    assert!(md.contains("| methods | yes |"), "{md}");
    Ok(())
}
