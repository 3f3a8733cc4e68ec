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
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    fn bound(&self, total: u64, i: u32) -> u64 {
        (total as u128 * i as u128 / self.count as u128) as u64
    }

    /// This segment's part of `total`.
    pub fn share(&self, total: u64) -> u64 {
        self.bound(total, self.index + 1) - self.bound(total, self.index)
    }

    /// How much of `total` the segments before this one hold.
    pub fn offset(&self, total: u64) -> u64 {
        self.bound(total, self.index)
    }

    /// The executor with VU counts cut to this segment. Per-VU iteration
    /// counts stay: each VU still runs all of its own iterations.
    pub fn apply(&self, e: &Executor) -> Executor {
        let mut e = *e;
        match &mut e {
            Executor::ConstantVus { vus, .. } | Executor::PerVuIterations { vus, .. } => {
                *vus = self.share(u64::from(*vus)) as u32
            }
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
