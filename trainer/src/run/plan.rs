//! The step plan of a run: micro-batches, gradient accumulation, steps per epoch, and which
//! schedule (and which phase of LP-FT) a step belongs to.

use crate::config::{Method, TrainConfig};
use crate::data::RowRef;
use crate::error::{Result, TrainError};
use crate::optim::schedule::AnySchedule;

/// Sizes and schedules derived from the config, the number of training rows and the number of
/// data-parallel ranks. With `world` ranks each optimizer step's `batch_size` rows are split into
/// `world` equal, contiguous slices, one per rank; each rank runs its slice in micro-batches and
/// the ranks average their gradients, so a step is the single-process step of the same rows.
pub struct StepPlan {
    pub method: Method,
    /// Data-parallel ranks (1: one process).
    pub world: usize,
    /// Images per forward/backward on this rank.
    pub micro: usize,
    /// Micro-batches per optimizer step on this rank.
    pub accum: usize,
    /// Images per optimizer step, over every rank.
    pub batch_size: usize,
    /// Images per optimizer step on each rank (`batch_size / world`).
    pub rank_rows: usize,
    pub train_rows: usize,
    /// Rows each epoch trains on: `train_rows`, or with `drop_last` its whole batches only.
    pub epoch_rows: usize,
    pub steps_per_epoch: usize,
    /// Micro-batches per epoch on this rank.
    pub micro_per_epoch: usize,
    /// LP-FT: epochs of linear probing before the FT epochs (0 otherwise).
    pub lp_epochs: usize,
    pub total_epochs: usize,
    pub total_steps: usize,
    schedule: AnySchedule,
    lp_schedule: Option<AnySchedule>,
}

impl StepPlan {
    /// The plan of one rank of `world` (1 for a single process).
    pub fn new(cfg: &TrainConfig, train_rows: usize, world: usize) -> Result<Self> {
        let batch_size = cfg.train.batch_size;
        let world = world.max(1);
        if world > 1 && !cfg.data.drop_last {
            return Err(TrainError::Config(format!(
                "data-parallel training over {world} ranks needs whole steps: set [data] \
                 drop_last = true (the default)"
            )));
        }
        if !batch_size.is_multiple_of(world) {
            return Err(TrainError::Config(format!(
                "[train] batch_size ({batch_size}) is not a multiple of the {world} ranks \
                 (WORLD_SIZE): each rank takes an equal slice of every step"
            )));
        }
        let rank_rows = batch_size / world;
        // The configured micro-batch bounds each rank's forward; a rank's slice may be smaller.
        let micro = cfg.micro_batch().min(rank_rows);
        if !rank_rows.is_multiple_of(micro) {
            return Err(TrainError::Config(format!(
                "each of the {world} ranks takes {rank_rows} rows per step, not a multiple of \
                 [train] micro_batch_size ({micro})"
            )));
        }
        let epoch_rows = if cfg.data.drop_last {
            train_rows - train_rows % batch_size
        } else {
            train_rows
        };
        if epoch_rows == 0 {
            return Err(TrainError::Data(format!(
                "{train_rows} training rows make no whole batch of {batch_size} (set [data] \
                 drop_last = false to train on a partial one)"
            )));
        }
        let steps_per_epoch = epoch_rows.div_ceil(batch_size);
        let lp_epochs = cfg.lp_ft.as_ref().map(|l| l.lp_epochs).unwrap_or(0);
        let total_epochs = cfg.total_epochs();
        Ok(StepPlan {
            method: cfg.train.method,
            world,
            micro,
            accum: rank_rows / micro,
            batch_size,
            rank_rows,
            train_rows,
            epoch_rows,
            steps_per_epoch,
            micro_per_epoch: (epoch_rows / world).div_ceil(micro),
            lp_epochs,
            total_epochs,
            total_steps: steps_per_epoch * total_epochs,
            schedule: cfg.schedule.build(steps_per_epoch * cfg.train.epochs)?,
            lp_schedule: match &cfg.lp_ft {
                Some(l) => Some(l.lp_schedule.build(steps_per_epoch * lp_epochs)?),
                None => None,
            },
        })
    }

    /// The rows of an epoch's `order` that `rank` trains on, in its order: its slice of every
    /// step (rows `[r·b, (r+1)·b)` of each step's `batch_size`, with `b = batch_size / world`).
    pub(crate) fn rank_order(&self, order: &[RowRef], rank: usize) -> Vec<RowRef> {
        if self.world == 1 {
            return order[..self.epoch_rows.min(order.len())].to_vec();
        }
        (0..self.steps_per_epoch)
            .flat_map(|s| {
                let start = s * self.batch_size + rank * self.rank_rows;
                order[start..start + self.rank_rows].iter().copied()
            })
            .collect()
    }

    /// Converts a resume point (micro-batches of an epoch done, at a step boundary) saved by a
    /// run with `accum` micro-batches per step to this plan's micro-batches.
    pub(crate) fn resume_batch(&self, next_batch: usize, saved_accum: usize) -> usize {
        next_batch / saved_accum.max(1) * self.accum
    }

    /// Whether `epoch` trains the head only (LP, and the probe phase of LP-FT).
    pub(crate) fn probing(&self, epoch: usize) -> bool {
        self.method == Method::Lp || epoch < self.lp_epochs
    }

    /// The schedule of global step `step` and the step's index in it (LP-FT: the probe's
    /// schedule first, then `[schedule]` from 0).
    pub(crate) fn schedule_at(&self, step: usize) -> (&AnySchedule, usize) {
        let lp_steps = self.steps_per_epoch * self.lp_epochs;
        match &self.lp_schedule {
            Some(lp) if step < lp_steps => (lp, step),
            _ => (&self.schedule, step.saturating_sub(lp_steps)),
        }
    }

    /// This rank's rows of the optimizer step that micro-batch `micro_batch` belongs to (the
    /// last step of an epoch may be short): each micro-batch's loss is scaled by its share of
    /// them (and the ranks' gradients are averaged).
    pub(crate) fn step_rows(&self, micro_batch: usize) -> usize {
        let step_in_epoch = micro_batch / self.accum;
        self.rank_rows
            .min(self.epoch_rows / self.world - step_in_epoch * self.rank_rows)
    }

    /// Whether micro-batch `micro_batch` completes an optimizer step.
    pub(crate) fn completes_step(&self, micro_batch: usize) -> bool {
        (micro_batch + 1).is_multiple_of(self.accum) || micro_batch + 1 == self.micro_per_epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::schedule::{Schedule, ScheduleConfig};

    /// 10 rows, steps of 4 rows in micro-batches of 2; LP-FT with 1 probe epoch of 3 steps.
    fn plan() -> StepPlan {
        let sched = |steps| ScheduleConfig::default().build(steps).unwrap();
        StepPlan {
            method: Method::LpFt,
            world: 1,
            micro: 2,
            accum: 2,
            batch_size: 4,
            rank_rows: 4,
            train_rows: 10,
            epoch_rows: 10,
            steps_per_epoch: 3,
            micro_per_epoch: 5,
            lp_epochs: 1,
            total_epochs: 3,
            total_steps: 9,
            schedule: sched(6),
            lp_schedule: Some(sched(3)),
        }
    }

    #[test]
    fn steps_accumulate_and_the_last_one_is_short() {
        let p = plan();
        // Micro-batches 0..5 of an epoch: steps end after 1, 3 and the last (4).
        let ends: Vec<bool> = (0..5).map(|mb| p.completes_step(mb)).collect();
        assert_eq!(ends, [false, true, false, true, true]);
        // The third step holds the 2 remaining rows, so its one micro-batch counts fully.
        assert_eq!(
            (0..5).map(|mb| p.step_rows(mb)).collect::<Vec<_>>(),
            [4, 4, 4, 4, 2]
        );
    }

    fn config(drop_last: Option<bool>) -> TrainConfig {
        let drop = drop_last
            .map(|d| format!("drop_last = {d}"))
            .unwrap_or_default();
        toml::from_str(&format!(
            "[model]\nname = \"tiny\"\n[data]\nshards = \"d\"\n{drop}\n\
             [train]\nmethod = \"ft\"\nepochs = 1\nbatch_size = 4\nmicro_batch_size = 2\n"
        ))
        .unwrap()
    }

    #[test]
    fn drop_last_is_the_default_and_trains_whole_batches_only() {
        // The reference's DataLoader(drop_last=True): 10 rows in batches of 4 -> 2 steps of 8 rows.
        let p = StepPlan::new(&config(None), 10, 1).unwrap();
        assert_eq!(
            (p.epoch_rows, p.steps_per_epoch, p.micro_per_epoch),
            (8, 2, 4)
        );
        assert_eq!(
            (0..4).map(|mb| p.step_rows(mb)).collect::<Vec<_>>(),
            [4, 4, 4, 4]
        );
        let keep = StepPlan::new(&config(Some(false)), 10, 1).unwrap();
        assert_eq!((keep.epoch_rows, keep.steps_per_epoch), (10, 3));
        let e = StepPlan::new(&config(Some(true)), 3, 1)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("no whole batch of 4") && e.contains("drop_last"),
            "{e}"
        );
    }

    #[test]
    fn lp_ft_probes_first_with_its_own_schedule() {
        let p = plan();
        assert_eq!(
            (0..3).map(|e| p.probing(e)).collect::<Vec<_>>(),
            [true, false, false]
        );
        let (s, k) = p.schedule_at(2);
        assert_eq!((s.total_steps(), k), (3, 2));
        let (s, k) = p.schedule_at(3);
        assert_eq!((s.total_steps(), k), (6, 0));
        let lp = StepPlan {
            method: Method::Lp,
            lp_epochs: 0,
            lp_schedule: None,
            ..plan()
        };
        assert!(lp.probing(2));
        assert_eq!(lp.schedule_at(4).1, 4);
    }

    #[test]
    fn ranks_take_equal_slices_of_every_step() {
        let rows: Vec<RowRef> = (0..11).map(|i| RowRef { group: 0, row: i }).collect();
        let ids = |v: Vec<RowRef>| v.iter().map(|r| r.row).collect::<Vec<_>>();
        // 11 rows, steps of 4 in micro-batches of 2: one rank trains rows 0..8 in 4 micro-batches.
        let one = StepPlan::new(&config(None), 11, 1).unwrap();
        assert_eq!(ids(one.rank_order(&rows, 0)), (0..8).collect::<Vec<_>>());
        // Two ranks: each takes 2 rows of each step, in one micro-batch per step, and is
        // scaled by its own 2 rows (the ranks then average).
        let two = StepPlan::new(&config(None), 11, 2).unwrap();
        assert_eq!((two.rank_rows, two.micro, two.accum), (2, 2, 1));
        assert_eq!((two.steps_per_epoch, two.micro_per_epoch), (2, 2));
        assert_eq!(ids(two.rank_order(&rows, 0)), [0, 1, 4, 5]);
        assert_eq!(ids(two.rank_order(&rows, 1)), [2, 3, 6, 7]);
        assert_eq!(two.step_rows(1), 2);
        assert!(two.completes_step(0) && two.completes_step(1));
        // Four ranks: micro-batches shrink to the slice (1 row).
        let four = StepPlan::new(&config(None), 11, 4).unwrap();
        assert_eq!((four.micro, four.accum, four.micro_per_epoch), (1, 1, 2));
        assert_eq!(ids(four.rank_order(&rows, 3)), [3, 7]);
        // Resume points move between world sizes at step boundaries: 1 step done is 2
        // micro-batches of one rank and 1 of two ranks'.
        assert_eq!(two.resume_batch(2, one.accum), 1);
        assert_eq!(one.resume_batch(1, two.accum), 2);
        // Refusals name the fix.
        let e = StepPlan::new(&config(None), 11, 3)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a multiple of the 3 ranks"), "{e}");
        let e = StepPlan::new(&config(Some(false)), 11, 2)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("drop_last = true"), "{e}");
    }
}
