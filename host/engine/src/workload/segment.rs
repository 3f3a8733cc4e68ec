use crate::config::Executor;

/// This node's share of the load: part `index` of `count` equal parts.
/// Shares are cut at `total * i / count` boundaries, so the parts of any
/// total add up to exactly that total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub index: u32,
    pub count: u32,
}

impl Segment {
    fn bound(&self, total: u64, i: u32) -> u64 {
        (total as u128 * i as u128 / self.count as u128) as u64
    }

    /// This segment's part of `total`.
    pub fn share(&self, total: u64) -> u64 {
        self.bound(total, self.index + 1) - self.bound(total, self.index)
    }

    /// The executor with VU counts cut to this segment. Per-VU iteration
    /// counts stay (each VU still runs all of its own); shared iterations,
    /// ramps and arrival schedules are cut by the executor itself, which
    /// needs the whole to compute its share exactly at every moment.
    pub fn apply(&self, e: &Executor) -> Executor {
        let mut e = e.clone();
        let cut = |n: &mut u32| *n = self.share(u64::from(*n)) as u32;
        match &mut e {
            Executor::ConstantVus { vus, .. }
            | Executor::PerVuIterations { vus, .. }
            | Executor::SharedIterations { vus, .. } => cut(vus),
            Executor::ConstantArrivalRate {
                pre_allocated_vus, ..
            }
            | Executor::RampingArrivalRate {
                pre_allocated_vus, ..
            } => {
                // Every segment with a share of the schedule needs a VU to run it.
                *pre_allocated_vus = (self.share(u64::from(*pre_allocated_vus)) as u32).max(1)
            }
            // Their VU counts change during the run: the executor cuts
            // each one as it comes.
            Executor::RampingVus { .. } | Executor::ExternallyControlled { .. } => {}
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_exactly() {
        for count in 1..=7u32 {
            for total in [0u64, 1, 2, 5, 10, 99, 1000] {
                let sum: u64 = (0..count)
                    .map(|index| Segment { index, count }.share(total))
                    .sum();
                assert_eq!(sum, total, "total {total} over {count}");
            }
        }
    }
}
