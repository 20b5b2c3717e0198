//! Unit tests of both schedules (their torch parity is in `tests/schedule.rs`).

use super::one_cycle::annealing_cos;
use super::*;

fn one_cycle(max_lr: f64, pct_start: f64, total: usize) -> Result<OneCycle, ScheduleError> {
    OneCycleConfig {
        max_lr,
        pct_start,
        ..OneCycleConfig::paper_recipe()
    }
    .build(total)
}

#[test]
fn one_cycle_recipe_shape() {
    let s = OneCycleConfig::paper_recipe().build(1000).unwrap();
    // Warm-up ends at 0.02 * 1000 - 1 = 19 (an integer): exact peak there.
    assert_eq!(s.warmup_end(), 19.0);
    assert_eq!(s.lr(19), Some(3e-5));
    assert_eq!(s.beta1(19), Some(0.85));
    // Start: initial lr (up to cos(0) rounding, as in torch) and max momentum.
    assert!((s.lr(0).unwrap() - 3e-5 / 25.0).abs() < 1e-20);
    assert_eq!(s.beta1(0), Some(0.95));
    // The last step used reaches min_lr and max momentum exactly.
    assert_eq!(s.lr(999), Some(3e-5 / 25.0 / 1e4));
    assert_eq!(s.beta1(999), Some(0.95));
    // Step total_steps exists in torch (lr climbing back), beyond it torch raises.
    assert!(s.lr(1000).unwrap() > s.lr(999).unwrap());
    assert_eq!(s.lr(1001), None);
    assert_eq!(s.beta1(1001), None);
    assert_eq!(s.lr(usize::MAX), None);
    // Monotone up, then down.
    for k in 1..=19 {
        assert!(s.lr(k).unwrap() > s.lr(k - 1).unwrap(), "step {k}");
    }
    for k in 20..=999 {
        assert!(s.lr(k).unwrap() < s.lr(k - 1).unwrap(), "step {k}");
    }
}

#[test]
fn one_cycle_single_step() {
    // total_steps 1: warm-up end 0.02 - 1 < 0, so step 0 is the end of the anneal phase.
    let s = one_cycle(1.0, 0.02, 1).unwrap();
    assert_eq!(s.lr(0), Some(1.0 / 25.0 / 1e4));
    assert_eq!(s.beta1(0), Some(0.95));
    assert!(s.lr(1).is_some());
    assert_eq!(s.lr(2), None);
    assert_eq!(s.total_steps(), 1);
}

#[test]
fn one_cycle_warmup_shorter_than_a_step() {
    // 0.02 * 7 - 1 = -0.86: every step is in the anneal phase; max_lr and initial_lr are never
    // reached and the first lr is already below the peak.
    let s = one_cycle(1.0, 0.02, 7).unwrap();
    assert!(s.warmup_end() < 0.0);
    let lr0 = s.lr(0).unwrap();
    assert!(lr0 < 1.0 && lr0 > 0.9);
    assert!(s.lr(1).unwrap() < lr0);
    assert!(s.beta1(0).unwrap() > 0.85);
    // Warm-up end in (0, 1): step 0 is warm-up (initial lr), step 1 already annealing.
    let s = one_cycle(1.0, 0.15, 10).unwrap();
    assert_eq!(s.warmup_end(), 0.5);
    assert!((s.lr(0).unwrap() - 0.04).abs() < 1e-15);
    assert!(s.lr(1).unwrap() < 1.0);
}

#[test]
fn one_cycle_zero_length_warmup_is_an_error() {
    // 0.02 * 50 == 1.0 exactly: torch raises ZeroDivisionError at construction.
    assert_eq!(
        one_cycle(1.0, 0.02, 50),
        Err(ScheduleError::ZeroLengthWarmup {
            pct_start: 0.02,
            total_steps: 50
        })
    );
    assert!(one_cycle(1.0, 0.02, 51).is_ok());
    assert!(one_cycle(1.0, 0.5, 2).is_err());
    assert!(one_cycle(1.0, 1.0, 1).is_err());
}

#[test]
fn one_cycle_pct_start_bounds() {
    // pct_start 1: no anneal phase; fine up to total_steps - 1, torch divides by zero at total.
    let s = one_cycle(1.0, 1.0, 5).unwrap();
    assert_eq!(s.lr(4), Some(1.0));
    assert_eq!(s.lr(5), None);
    assert_eq!(s.beta1(5), None);
    // pct_start 0: warm-up end -1, so the anneal phase starts at the peak at step *-1*: step 0
    // is already one step into the anneal (pct 1/5), below max_lr.
    let s = one_cycle(1.0, 0.0, 5).unwrap();
    assert_eq!(s.warmup_end(), -1.0);
    assert_eq!(s.lr(0), Some(annealing_cos(1.0, 1.0 / 25.0 / 1e4, 0.2)));
    assert!(s.lr(0).unwrap() < 1.0);
    assert_eq!(s.lr(4), Some(1.0 / 25.0 / 1e4));
}

#[test]
fn one_cycle_invalid_configs() {
    let base = OneCycleConfig::paper_recipe();
    assert_eq!(base.build(0), Err(ScheduleError::ZeroTotalSteps));
    let bad = [
        OneCycleConfig {
            pct_start: 1.5,
            ..base
        },
        OneCycleConfig {
            pct_start: -0.1,
            ..base
        },
        OneCycleConfig {
            pct_start: f64::NAN,
            ..base
        },
        OneCycleConfig {
            max_lr: 0.0,
            ..base
        },
        OneCycleConfig {
            max_lr: -1.0,
            ..base
        },
        OneCycleConfig {
            max_lr: f64::INFINITY,
            ..base
        },
        OneCycleConfig {
            div_factor: 0.0,
            ..base
        },
        OneCycleConfig {
            final_div_factor: 0.0,
            ..base
        },
        OneCycleConfig {
            base_momentum: 1.0,
            ..base
        },
        OneCycleConfig {
            max_momentum: -0.5,
            ..base
        },
    ];
    for cfg in bad {
        let err = cfg.build(100).unwrap_err();
        assert!(
            matches!(err, ScheduleError::OutOfRange { .. }),
            "{cfg:?}: {err}"
        );
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn cosine_warmup_shape() {
    let cfg = CosineWarmupConfig {
        min_lr: 1e-3,
        ..CosineWarmupConfig::with_warmup_steps(1.0, 10)
    };
    let s = cfg.build(100).unwrap();
    assert_eq!(s.lr(0), Some(1.0 / 3.0));
    assert_eq!(s.lr(10), Some(1.0)); // min_lr + (base_lr - min_lr), exact here
    assert_eq!(s.lr(100), Some(1e-3));
    assert_eq!(s.lr(101), None);
    assert_eq!(s.beta1(100), Some(0.9));
    assert_eq!(s.beta1(101), None);
    for k in 1..=10 {
        assert!(s.lr(k).unwrap() > s.lr(k - 1).unwrap(), "step {k}");
    }
    for k in 11..=100 {
        assert!(s.lr(k).unwrap() < s.lr(k - 1).unwrap(), "step {k}");
    }
    // Linear warm-up: lr(k) = base * (s + (1 - s) k / warmup) up to rounding.
    for k in 0..10 {
        let closed = 1.0 / 3.0 + (2.0 / 3.0) * k as f64 / 10.0;
        assert!((s.lr(k).unwrap() - closed).abs() < 1e-15, "step {k}");
    }
}

#[test]
fn cosine_warmup_edges() {
    // No warm-up: starts at base_lr.
    let s = CosineWarmupConfig::with_warmup_steps(0.5, 0)
        .build(1)
        .unwrap();
    assert_eq!(s.lr(0), Some(0.5));
    assert_eq!(s.lr(1), Some(0.0));
    assert_eq!(s.lr(2), None);
    // warmup_pct rounds up: ceil(7 * 0.3) = ceil(2.1) = 3.
    let s = CosineWarmupConfig::with_warmup_pct(0.5, 0.3)
        .build(7)
        .unwrap();
    assert_eq!(s.warmup_steps(), 3);
    assert_eq!(s.lr(3), Some(0.5));
}

#[test]
fn cosine_warmup_invalid_configs() {
    let base = CosineWarmupConfig::with_warmup_steps(0.1, 5);
    assert_eq!(base.build(0), Err(ScheduleError::ZeroTotalSteps));
    assert_eq!(
        base.build(5),
        Err(ScheduleError::WarmupTooLong {
            warmup_steps: 5,
            total_steps: 5
        })
    );
    assert!(base.build(6).is_ok());
    assert_eq!(
        CosineWarmupConfig {
            warmup_pct: Some(0.1),
            ..base
        }
        .build(10),
        Err(ScheduleError::WarmupSpec)
    );
    assert_eq!(
        CosineWarmupConfig {
            warmup_steps: None,
            ..base
        }
        .build(10),
        Err(ScheduleError::WarmupSpec)
    );
    let bad = [
        CosineWarmupConfig {
            start_factor: 0.0,
            ..base
        },
        CosineWarmupConfig {
            start_factor: 1.5,
            ..base
        },
        CosineWarmupConfig {
            base_lr: 0.0,
            ..base
        },
        CosineWarmupConfig {
            min_lr: 0.2,
            ..base
        },
        CosineWarmupConfig {
            min_lr: -1e-9,
            ..base
        },
        CosineWarmupConfig { beta1: 1.0, ..base },
        CosineWarmupConfig::with_warmup_pct(0.1, 1.0),
        CosineWarmupConfig::with_warmup_pct(0.1, f64::NAN),
    ];
    for cfg in bad {
        let err = cfg.build(100).unwrap_err();
        assert!(
            matches!(err, ScheduleError::OutOfRange { .. }),
            "{cfg:?}: {err}"
        );
    }
}

#[test]
fn any_schedule_dispatches() {
    let s = ScheduleConfig::default().build(1000).unwrap();
    let direct = OneCycleConfig::paper_recipe().build(1000).unwrap();
    assert_eq!(s.total_steps(), 1000);
    for k in [0, 19, 500, 999, 1000, 1001] {
        assert_eq!(s.lr(k), direct.lr(k));
        assert_eq!(s.beta1(k), direct.beta1(k));
    }
    let cfg = ScheduleConfig::CosineWarmup(CosineWarmupConfig::with_warmup_steps(0.1, 5));
    assert!(cfg.validate().is_ok());
    let s = cfg.build(50).unwrap();
    assert!(matches!(s, AnySchedule::CosineWarmup(_)));
    assert_eq!(s.lr(5), Some(0.1));
    assert_eq!(s.beta1(0), Some(0.9));
}
