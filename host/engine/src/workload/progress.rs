//! What a running test on this node looks like from inside a VU (k6's
//! `exec.instance` and `exec.scenario.startTime`/`progress`): counts every
//! scenario shares, and each scenario's start and how far it is.

use crate::config::Executor;
use crate::plugin::{Progress, RunProgress};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// This node's whole test: one per run, shared by its scenarios.
#[derive(Debug, Default)]
pub struct Instance {
    pub vus_active: AtomicU32,
    completed: AtomicU64,
    interrupted: AtomicU64,
    /// When the test's clock began (before any scenario's startTime).
    began: OnceLock<Instant>,
}

/// What makes a scenario's progress: its iterations, or its duration.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Extent {
    Iterations(u64),
    Duration(Duration),
}

/// One scenario's figures.
#[derive(Debug)]
pub struct ScenarioProgress {
    instance: Arc<Instance>,
    vu_ids: Arc<AtomicU32>,
    extent: Extent,
    /// Iterations that ended, however they ended.
    ended: AtomicU64,
    began: OnceLock<(Instant, SystemTime)>,
}

impl ScenarioProgress {
    /// `executor` is this node's share of the scenario's (`Segment::apply`)
    /// and `shared` its share of a `shared-iterations` count.
    pub fn new(
        instance: Arc<Instance>,
        vu_ids: Arc<AtomicU32>,
        executor: &Executor,
        shared: impl Fn(u64) -> u64,
    ) -> Self {
        let extent = match executor {
            Executor::PerVuIterations {
                vus, iterations, ..
            } => Extent::Iterations(u64::from(*vus) * iterations),
            Executor::SharedIterations { iterations, .. } => {
                Extent::Iterations(shared(*iterations))
            }
            other => Extent::Duration(other.max_duration()),
        };
        ScenarioProgress {
            instance,
            vu_ids,
            extent,
            ended: AtomicU64::new(0),
            began: OnceLock::new(),
        }
    }

    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// The test's clock began at `test`, this scenario's now.
    pub fn begin(&self, test: Instant) {
        self.instance.began.get_or_init(|| test);
        self.began
            .get_or_init(|| (Instant::now(), SystemTime::now()));
    }

    /// An iteration ended: `completed` when it ran to its end.
    pub fn iteration_ended(&self, completed: bool) {
        self.ended.fetch_add(1, Ordering::Relaxed);
        let counter = match completed {
            true => &self.instance.completed,
            false => &self.instance.interrupted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn fraction(&self) -> f64 {
        let Some((began, _)) = self.began.get() else {
            return 0.0;
        };
        let f = match self.extent {
            Extent::Iterations(0) | Extent::Duration(Duration::ZERO) => 1.0,
            Extent::Iterations(n) => self.ended.load(Ordering::Relaxed) as f64 / n as f64,
            Extent::Duration(d) => began.elapsed().as_secs_f64() / d.as_secs_f64(),
        };
        f.clamp(0.0, 1.0)
    }
}

impl RunProgress for ScenarioProgress {
    fn now(&self) -> Progress {
        let i = &self.instance;
        Progress {
            vus_active: i.vus_active.load(Ordering::Relaxed),
            vus_initialized: self.vu_ids.load(Ordering::Relaxed),
            iterations_completed: i.completed.load(Ordering::Relaxed),
            iterations_interrupted: i.interrupted.load(Ordering::Relaxed),
            test_run: i.began.get().map_or(Duration::ZERO, |t| t.elapsed()),
            scenario_start: self.began.get().map(|(_, wall)| *wall),
            scenario_progress: self.fraction(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_iterations(n: u64) -> Executor {
        Executor::SharedIterations {
            vus: 2,
            iterations: n,
            max_duration: Duration::from_secs(600),
        }
    }

    #[test]
    fn iterations_make_progress_and_instance_counts_are_shared() {
        let instance = Arc::new(Instance::default());
        let ids = Arc::new(AtomicU32::new(3));
        let a = ScenarioProgress::new(instance.clone(), ids.clone(), &shared_iterations(8), |n| {
            n / 2
        });
        let b = ScenarioProgress::new(instance, ids, &shared_iterations(8), |n| n);
        assert_eq!(a.now().scenario_progress, 0.0, "not begun");
        assert_eq!(a.now().scenario_start, None);
        a.begin(Instant::now());
        a.iteration_ended(true);
        a.iteration_ended(false);
        b.iteration_ended(true);
        let now = a.now();
        assert_eq!(now.scenario_progress, 0.5, "2 of this node's 4");
        assert_eq!(
            (now.iterations_completed, now.iterations_interrupted),
            (2, 1)
        );
        assert_eq!(now.vus_initialized, 3);
        assert!(now.scenario_start.is_some());
        for _ in 0..10 {
            a.iteration_ended(true);
        }
        assert_eq!(a.now().scenario_progress, 1.0, "never past the end");
    }

    #[test]
    fn durations_make_progress_by_the_clock() {
        let p = ScenarioProgress::new(
            Arc::default(),
            Arc::default(),
            &Executor::ConstantVus {
                vus: 1,
                duration: Duration::from_secs(3600),
            },
            |n| n,
        );
        p.begin(Instant::now() - Duration::from_secs(5));
        let now = p.now();
        assert!(
            now.scenario_progress > 0.0 && now.scenario_progress < 0.01,
            "{now:?}"
        );
        assert!(now.test_run >= Duration::from_secs(5));
    }
}
