//! The time arithmetic of the executors: how many VUs a ramp wants at a
//! moment, and when the k-th iteration of an arrival-rate scenario starts.

use crate::config::Stage;
use std::time::Duration;

/// Piecewise-linear value over time: `start` at 0, then each stage moves
/// linearly to its target over its duration.
#[derive(Debug, Clone)]
pub struct Ramp {
    points: Vec<(f64, f64)>,
}

impl Ramp {
    pub fn new(start: u64, stages: &[Stage]) -> Ramp {
        let mut points = vec![(0.0, start as f64)];
        let mut t = 0.0;
        for s in stages {
            t += s.duration.0.as_secs_f64();
            points.push((t, s.target as f64));
        }
        Ramp { points }
    }

    /// The same ramp with every value multiplied by `factor`.
    pub fn scaled(mut self, factor: f64) -> Ramp {
        self.points.iter_mut().for_each(|p| p.1 *= factor);
        self
    }

    /// The value at `t` seconds (the last target after the end).
    pub fn at(&self, t: f64) -> f64 {
        let mut prev = self.points[0];
        for &p in &self.points[1..] {
            if t < p.0 {
                let span = p.0 - prev.0;
                return if span <= 0.0 {
                    p.1
                } else {
                    prev.1 + (p.1 - prev.1) * (t - prev.0) / span
                };
            }
            prev = p;
        }
        prev.1
    }

    fn segments(&self) -> impl Iterator<Item = ((f64, f64), (f64, f64))> + '_ {
        self.points.windows(2).map(|w| (w[0], w[1]))
    }
}

/// Start times of an open-model scenario: iteration k starts when the
/// integral of the rate reaches k, so a constant R/s over D s gives exactly
/// R×D starts. Only every `stride`-th iteration from `first` is yielded:
/// that is how a segment takes its exact share of a schedule.
pub struct Arrivals {
    /// (segment start s, duration s, rate at start /s, slope /s², starts before it)
    segments: Vec<(f64, f64, f64, f64, f64)>,
    total: f64,
    next_k: u64,
    stride: u64,
    cursor: usize,
}

impl Arrivals {
    /// `rate` is in iterations per second.
    pub fn new(rate: &Ramp, first: u64, stride: u64) -> Arrivals {
        let mut segments = Vec::new();
        let mut n0 = 0.0;
        for ((t0, r0), (t1, r1)) in rate.segments() {
            let d = t1 - t0;
            if d <= 0.0 {
                continue;
            }
            let slope = (r1 - r0) / d;
            segments.push((t0, d, r0, slope, n0));
            n0 += (r0 + r1) / 2.0 * d;
        }
        Arrivals {
            segments,
            total: n0,
            next_k: first,
            stride: stride.max(1),
            cursor: 0,
        }
    }

    pub fn constant(per_second: f64, duration: Duration, first: u64, stride: u64) -> Arrivals {
        let ramp = Ramp {
            points: vec![(0.0, per_second), (duration.as_secs_f64(), per_second)],
        };
        Arrivals::new(&ramp, first, stride)
    }

    /// How many starts the whole schedule (all segments) has.
    pub fn total(&self) -> u64 {
        let t = self.total;
        // Starts happen at k = 0, 1, ... while k < total (up to float noise).
        let rounded = t.round();
        if (t - rounded).abs() < 1e-6 {
            rounded as u64
        } else {
            t.ceil() as u64
        }
    }

    fn time_of(&mut self, k: f64) -> Option<f64> {
        while self.cursor < self.segments.len() {
            let (t0, d, r0, slope, n0) = self.segments[self.cursor];
            let n_here = r0 * d + slope * d * d / 2.0;
            if k < n0 + n_here - 1e-9 {
                let need = k - n0;
                let s = if slope.abs() < 1e-12 {
                    if r0 <= 0.0 { return None } else { need / r0 }
                } else {
                    (-r0 + (r0 * r0 + 2.0 * slope * need).max(0.0).sqrt()) / slope
                };
                return Some(t0 + s.clamp(0.0, d));
            }
            self.cursor += 1;
        }
        None
    }
}

impl Iterator for Arrivals {
    /// Offset from the scenario start, and the global iteration number.
    type Item = (Duration, u64);

    fn next(&mut self) -> Option<(Duration, u64)> {
        let k = self.next_k;
        if k >= self.total() {
            return None;
        }
        let t = self.time_of(k as f64)?;
        self.next_k += self.stride;
        Some((Duration::from_secs_f64(t), k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;

    fn stage(secs: u64, target: u64) -> Stage {
        Stage {
            duration: HumanDuration(Duration::from_secs(secs)),
            target,
        }
    }

    #[test]
    fn ramps_interpolate_and_hold_the_last_target() {
        let r = Ramp::new(0, &[stage(10, 10), stage(10, 10), stage(5, 0)]);
        assert_eq!(r.at(0.0), 0.0);
        assert_eq!(r.at(5.0), 5.0);
        assert_eq!(r.at(15.0), 10.0);
        assert_eq!(r.at(22.5), 5.0);
        assert_eq!(r.at(99.0), 0.0);
    }

    #[test]
    fn constant_rate_gives_exactly_rate_times_duration() {
        let all: Vec<_> = Arrivals::constant(100.0, Duration::from_secs(3), 0, 1).collect();
        assert_eq!(all.len(), 300);
        assert_eq!(all[0].0, Duration::ZERO);
        assert!((all[150].0.as_secs_f64() - 1.5).abs() < 1e-9);
        assert!(all.last().unwrap().0 < Duration::from_secs(3));
    }

    #[test]
    fn segments_of_a_schedule_partition_it() {
        let ramp = Ramp::new(0, &[stage(4, 50), stage(2, 50), stage(4, 0)]);
        let whole: Vec<_> = Arrivals::new(&ramp, 0, 1).collect();
        // Areas: 0->50 over 4 s, 50 for 2 s, 50->0 over 4 s.
        assert_eq!(whole.len(), 300);
        let mut parts: Vec<_> = (0..3).flat_map(|i| Arrivals::new(&ramp, i, 3)).collect();
        parts.sort_by_key(|p| p.1);
        assert_eq!(parts, whole);
    }

    #[test]
    fn ramping_rate_starts_slowly_then_speeds_up() {
        let ramp = Ramp::new(0, &[stage(10, 100)]);
        let starts: Vec<_> = Arrivals::new(&ramp, 0, 1).collect();
        assert_eq!(starts.len(), 500);
        let first_half = starts
            .iter()
            .filter(|s| s.0 < Duration::from_secs(5))
            .count();
        assert_eq!(first_half, 125);
    }
}
