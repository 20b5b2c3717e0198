//! Training statistics kept on the device until the run needs them, so that a step never waits
//! for the GPU to hand back a number: each micro-batch's loss, distillation term and correct count
//! and each optimizer step's gradient norm stay device tensors, and are read in one transfer
//! where a logging window ends, before a checkpoint and at the epoch's end (as PyTorch loops
//! that call `.item()` only when they log).
//!
//! The host then adds them up exactly as it would have step by step (the same f64 additions in
//! the same order), so the logged means do not depend on when they were read. A data-parallel
//! run reads its step's sums at every step, where the ranks add them up.

use tch::{Device, Kind, Tensor};

use super::progress::{EpochStats, StepSums};
use crate::error::Result;

/// What one stored value group is.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// A micro-batch of `rows` rows: three values (mean loss, distillation term or 0, correct).
    Micro { rows: u64 },
    /// A step's sums already on the host (data-parallel runs: added over the ranks); no values.
    Sums(StepSums),
    /// The end of an optimizer step: one value (the gradient norm before clipping).
    StepEnd,
}

/// Statistics not yet read from the device, in the order they were made.
#[derive(Debug, Default)]
pub(crate) struct DeferredStats {
    values: Vec<Tensor>,
    entries: Vec<Entry>,
    /// Device-to-host reads made so far (`--profile` counts them).
    pub(crate) reads: u64,
}

impl DeferredStats {
    /// A micro-batch of `rows` rows: its mean loss and distillation term (0-dim) and its number of
    /// correct predictions (0-dim integer), all on the device, none read.
    pub(crate) fn micro(
        &mut self,
        rows: usize,
        loss: &Tensor,
        distill: Option<&Tensor>,
        correct: &Tensor,
    ) {
        let dev = loss.device();
        let distill = match distill {
            Some(d) => d.detach().to_kind(Kind::Double),
            None => Tensor::zeros([], (Kind::Double, dev)),
        };
        self.values.push(Tensor::stack(
            &[
                loss.detach().to_kind(Kind::Double),
                distill,
                correct.to_kind(Kind::Double),
            ],
            0,
        ));
        self.entries.push(Entry::Micro { rows: rows as u64 });
    }

    /// The micro-batches of the step in progress, read and summed now (a data-parallel run adds
    /// them over the ranks before the step ends); they leave the deferred list.
    pub(crate) fn take_step_sums(&mut self) -> Result<StepSums> {
        let first = self
            .entries
            .iter()
            .rposition(|e| !matches!(e, Entry::Micro { .. }))
            .map_or(0, |i| i + 1);
        let first_value = self.value_count(&self.entries[..first]);
        let entries = self.entries.split_off(first);
        let values = self.values.split_off(first_value);
        let flat = self.read(&values)?;
        let mut sums = StepSums::default();
        for (i, e) in entries.iter().enumerate() {
            if let Entry::Micro { rows } = e {
                let v = &flat[3 * i..3 * i + 3];
                sums.add_batch(*rows as usize, v[0], Some(v[1]), v[2].round() as u64);
            }
        }
        Ok(sums)
    }

    /// A step's sums known on the host (see [`DeferredStats::take_step_sums`]).
    pub(crate) fn sums(&mut self, sums: StepSums) {
        self.entries.push(Entry::Sums(sums));
    }

    /// The end of an optimizer step with its gradient norm (0-dim, on the device).
    pub(crate) fn step_end(&mut self, grad_norm: &Tensor) {
        self.values
            .push(grad_norm.detach().to_kind(Kind::Double).reshape([1]));
        self.entries.push(Entry::StepEnd);
    }

    /// Reads every finished step (one transfer) into `stats`, as the host would have added them
    /// step by step; a step still in progress stays here.
    pub(crate) fn flush(&mut self, stats: &mut EpochStats) -> Result<()> {
        let Some(last) = self
            .entries
            .iter()
            .rposition(|e| matches!(e, Entry::StepEnd))
        else {
            return Ok(());
        };
        let rest_entries = self.entries.split_off(last + 1);
        let rest_values = self.values.split_off(self.value_count(&self.entries));
        let entries = std::mem::replace(&mut self.entries, rest_entries);
        let values = std::mem::replace(&mut self.values, rest_values);
        let flat = self.read(&values)?;
        let mut at = 0;
        let mut sums = StepSums::default();
        for e in entries {
            match e {
                Entry::Micro { rows } => {
                    let v = &flat[at..at + 3];
                    sums.add_batch(rows as usize, v[0], Some(v[1]), v[2].round() as u64);
                    at += 3;
                }
                Entry::Sums(s) => sums = s,
                Entry::StepEnd => {
                    stats.add_step(&sums);
                    stats.window_grad_norm_sum += flat[at];
                    stats.window_steps += 1;
                    sums = StepSums::default();
                    at += 1;
                }
            }
        }
        Ok(())
    }

    /// Entries waiting to be read (a run with a very long logging window reads them every so
    /// often, so that they do not pile up on the device).
    pub(crate) fn pending(&self) -> usize {
        self.entries.len()
    }

    fn value_count(&self, entries: &[Entry]) -> usize {
        entries
            .iter()
            .filter(|e| !matches!(e, Entry::Sums(_)))
            .count()
    }

    /// The values, concatenated on their device and copied to the host in one transfer.
    fn read(&mut self, values: &[Tensor]) -> Result<Vec<f64>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        self.reads += 1;
        let all = Tensor::cat(values, 0).to_device(Device::Cpu);
        Ok(Vec::<f64>::try_from(&all)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(v: f64, kind: Kind) -> Tensor {
        Tensor::from(v).to_kind(kind)
    }

    /// A micro-batch: rows, mean loss, distillation term, correct count.
    type Micro = (usize, f64, f64, i64);

    /// Two steps of micro-batches and a gradient norm each.
    const STEPS: [(&[Micro], f64); 2] = [
        (&[(3, 0.7, 0.1, 2), (5, 1.3, 0.25, 4)], 2.5),
        (&[(4, 0.9, 0.5, 1)], 1.25),
    ];

    fn push_step(d: &mut DeferredStats, micro: &[Micro]) {
        for &(rows, loss, distill, correct) in micro {
            d.micro(
                rows,
                &scalar(loss, Kind::Float),
                Some(&scalar(distill, Kind::Float)),
                &Tensor::from(correct),
            );
        }
    }

    #[test]
    fn one_read_gives_the_step_by_step_sums_and_leaves_a_step_in_progress() {
        let mut d = DeferredStats::default();
        for (micro, norm) in STEPS {
            push_step(&mut d, micro);
            d.step_end(&scalar(norm, Kind::Float));
        }
        // A micro-batch of the next step, not finished: it stays on the device.
        push_step(&mut d, &[(2, 5.0, 0.0, 1)]);
        let mut stats = EpochStats::default();
        d.flush(&mut stats).unwrap();
        // The losses went through float32 as the objective's do; compare with those roundings.
        let rounded = |v: f64| v as f32 as f64;
        let mut w = EpochStats::default();
        for (micro, norm) in STEPS {
            let mut sums = StepSums::default();
            for &(rows, loss, distill, correct) in micro {
                sums.add_batch(rows, rounded(loss), Some(rounded(distill)), correct as u64);
            }
            w.add_step(&sums);
            w.window_grad_norm_sum += rounded(norm);
            w.window_steps += 1;
        }
        assert_eq!(stats, w);
        assert_ne!(w, EpochStats::default());
        assert_eq!(d.reads, 1);
        assert_eq!(d.entries.len(), 1, "the unfinished micro-batch stays");
        // Nothing finished: no read.
        d.flush(&mut stats).unwrap();
        assert_eq!(d.reads, 1);
        d.step_end(&scalar(0.5, Kind::Float));
        d.flush(&mut stats).unwrap();
        assert_eq!(d.reads, 2);
        assert_eq!(stats.window_steps, 3);
        assert_eq!(stats.rows, 14);
        assert!(d.entries.is_empty() && d.values.is_empty());
    }

    #[test]
    fn flushing_after_every_step_or_once_adds_the_same() {
        let (mut each, mut once) = (DeferredStats::default(), DeferredStats::default());
        let (mut a, mut b) = (EpochStats::default(), EpochStats::default());
        for (micro, norm) in STEPS {
            for d in [&mut each, &mut once] {
                push_step(d, micro);
                d.step_end(&scalar(norm, Kind::Double));
            }
            each.flush(&mut a).unwrap();
        }
        once.flush(&mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!((each.reads, once.reads), (2, 1));
    }

    #[test]
    fn a_data_parallel_step_reads_its_sums_and_takes_the_added_ones() {
        let mut d = DeferredStats::default();
        let mut want = EpochStats::default();
        for (micro, norm) in STEPS {
            push_step(&mut d, micro);
            let local = d.take_step_sums().unwrap();
            assert_eq!(local.rows, micro.iter().map(|m| m.0 as u64).sum::<u64>());
            // As if another rank had the same rows: the ranks' sums added.
            let both = StepSums::from_array(local.to_array().map(|v| 2.0 * v));
            d.sums(both);
            d.step_end(&scalar(norm, Kind::Double));
            want.add_step(&both);
            want.window_grad_norm_sum += norm;
            want.window_steps += 1;
        }
        let mut stats = EpochStats::default();
        d.flush(&mut stats).unwrap();
        assert_eq!(stats, want);
        assert_eq!(d.reads, 3, "one read per step's sums, one for the norms");
    }
}
