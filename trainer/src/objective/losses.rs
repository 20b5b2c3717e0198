//! The distillation losses of DESIGN §3, written as in the reference (PyTorch) so that the
//! fixture test (`tests/losses/make_fixtures.py`) can compare them number for number.

use tch::{Kind, Reduction, Tensor};

/// Feature distillation: `MSE(student, teacher)` averaged over N·D
/// (`torch.nn.functional.mse_loss(s, t)`). `student`, `teacher`: [N, D]; the teacher is a target
/// (no gradient flows into it).
pub fn feature_mse(student: &Tensor, teacher: &Tensor) -> Tensor {
    student.mse_loss(&teacher.detach(), Reduction::Mean)
}

/// Knowledge distillation: `T² · KL(softmax(t/T) ‖ softmax(s/T))` with batchmean reduction
/// (`F.kl_div(F.log_softmax(s/T, 1), F.softmax(t/T, 1), reduction="batchmean") * T * T`).
/// `student`, `teacher`: logits [N, C].
pub fn kd_kl(student: &Tensor, teacher: &Tensor, temperature: f64) -> Tensor {
    let n = student.size()[0].max(1) as f64;
    let log_q = (student / temperature).log_softmax(1, Kind::Float);
    let log_p = (teacher.detach() / temperature).log_softmax(1, Kind::Float);
    // Σ p (log p − log q); p log p is 0 where p underflows to 0 (as in torch's kl_div, whose
    // target term uses xlogy).
    let p = log_p.exp();
    let kl = (p.xlogy(&p) - &p * log_q).sum(Kind::Float);
    kl * (temperature * temperature / n)
}

/// Cross-entropy with integer labels, mean over the batch (`F.cross_entropy(logits, y)`).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.cross_entropy_for_logits(labels)
}
