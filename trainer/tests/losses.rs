//! The training losses against PyTorch on the same tensors (fixture from
//! tests/losses/make_fixtures.py): CE, feature MSE (mean over N·D), KD T²·KL batchmean at T = 10
//! (the recipe's) and T = 1 (with a teacher row whose softmax underflows to 0). Values and the
//! gradients w.r.t. the student input; tolerance 1e-5 relative (float32, different kernels).

use std::path::Path;

use anyhow::Result;
use cfkit_models::weights::read_safetensors;
use cfkit_trainer::objective::losses::{cross_entropy, feature_mse, kd_kl};
use tch::{Kind, Tensor};

fn close(name: &str, got: &Tensor, want: &Tensor) {
    let scale = want.abs().max().double_value(&[]).max(1e-3);
    let diff = (got.to_kind(Kind::Float) - want)
        .abs()
        .max()
        .double_value(&[]);
    assert!(
        diff <= 1e-5 * scale,
        "{name}: max |diff| {diff} (scale {scale})"
    );
}

fn check(
    name: &str,
    input: &Tensor,
    want: &Tensor,
    want_grad: &Tensor,
    f: impl Fn(&Tensor) -> Tensor,
) {
    let x = input.detach().set_requires_grad(true);
    let loss = f(&x);
    let g = Tensor::run_backward(&[&loss], &[&x], false, false).remove(0);
    close(name, &loss.reshape([1]), want);
    close(&format!("{name} gradient"), &g, want_grad);
}

#[test]
fn losses_match_pytorch() -> Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/losses.safetensors");
    let t = read_safetensors(&path)?.tensors;
    check("mse", &t["s_feat"], &t["mse"], &t["mse_grad"], |x| {
        feature_mse(x, &t["t_feat"])
    });
    check("ce", &t["s_logits"], &t["ce"], &t["ce_grad"], |x| {
        cross_entropy(x, &t["labels"])
    });
    for temp in [10, 1] {
        check(
            &format!("kd T={temp}"),
            &t["s_logits"],
            &t[&format!("kd_t{temp}")],
            &t[&format!("kd_t{temp}_grad")],
            |x| kd_kl(x, &t["t_logits"], temp as f64),
        );
    }
    // The teacher is a target: no gradient reaches it.
    let teacher = t["t_feat"].detach().set_requires_grad(true);
    let loss = feature_mse(&t["s_feat"].detach().set_requires_grad(true), &teacher);
    loss.backward();
    assert!(!teacher.grad().defined());
    Ok(())
}
