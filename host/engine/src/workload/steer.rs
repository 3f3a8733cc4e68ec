//! Live control of a running test: pause and resume, the VU count of
//! `externally-controlled` scenarios (k6's semantics), and a factor on
//! the rate of arrival-rate scenarios.
//!
//! The executors read the wanted state from watch channels, so a change
//! reaches every VU at once and costs nothing while nobody steers.

use crate::config::Executor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// The handle the dashboard, the CLI and the executors share.
#[derive(Clone, Default)]
pub struct Steering(Arc<Inner>);

#[derive(Default)]
struct Inner {
    paused: Paused,
    scenarios: Mutex<BTreeMap<Arc<str>, Steered>>,
    /// What was changed and when, for the report.
    log: Mutex<Vec<(Instant, String)>>,
    /// Scenarios registered so far: a cluster node waits for its share's
    /// to be there before it applies the changes the plan carries.
    registered: Registered,
}

struct Registered(watch::Sender<usize>);

impl Default for Registered {
    fn default() -> Self {
        Registered(watch::channel(0).0)
    }
}

struct Paused(watch::Sender<bool>);

impl Default for Paused {
    fn default() -> Self {
        Paused(watch::channel(false).0)
    }
}

/// One scenario's knob: the VU count (externally-controlled) or the rate
/// factor (arrival rates); other executors have none.
enum Steered {
    Vus { now: watch::Sender<u64>, max: u64 },
    Rate(watch::Sender<f64>),
    Fixed(&'static str),
}

/// A change asked for. `scenario: None` means every scenario it applies to.
/// A cluster carries it in the plan, so every node applies the same one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Pause,
    Resume,
    Vus {
        scenario: Option<String>,
        vus: u64,
    },
    Rate {
        scenario: Option<String>,
        factor: f64,
    },
}

/// The highest rate factor taken: past it a typo (`100` for `1.00`)
/// would flood the target.
pub const MAX_FACTOR: f64 = 100.0;

impl Steering {
    pub fn new() -> Steering {
        Steering::default()
    }

    /// Makes `name`'s knob; returns the receivers its executor follows.
    pub(crate) fn register(&self, name: &Arc<str>, executor: &Executor) -> Knob {
        let (steered, knob) = match executor {
            Executor::ExternallyControlled { vus, max_vus, .. } => {
                let (tx, rx) = watch::channel(u64::from(*vus));
                let max = u64::from(*max_vus);
                (Steered::Vus { now: tx, max }, Knob::Vus(rx))
            }
            Executor::ConstantArrivalRate { .. } | Executor::RampingArrivalRate { .. } => {
                let (tx, rx) = watch::channel(1.0);
                (Steered::Rate(tx), Knob::Rate(rx))
            }
            other => (Steered::Fixed(other.name()), Knob::None),
        };
        lock(&self.0.scenarios).insert(name.clone(), steered);
        self.0.registered.0.send_modify(|n| *n += 1);
        knob
    }

    /// Returns once the run's scenarios have their knobs (changes to VUs
    /// and rates before then find no scenario to apply to).
    pub async fn registered(&self) {
        let mut rx = self.0.registered.0.subscribe();
        let _ = rx.wait_for(|n| *n > 0).await;
    }

    /// Whether the run is paused, for executors to wait on.
    pub(crate) fn paused(&self) -> watch::Receiver<bool> {
        self.0.paused.0.subscribe()
    }

    /// Carries out `change`; the text says what it did, an error what is
    /// wrong with it. Nothing changes on an error.
    pub fn apply(&self, change: &Change) -> Result<String, String> {
        let said = match change {
            Change::Pause => self.set_paused(true),
            Change::Resume => self.set_paused(false),
            Change::Vus { scenario, vus } => self.set_vus(scenario.as_deref(), *vus)?,
            Change::Rate { scenario, factor } => self.set_rate(scenario.as_deref(), *factor)?,
        };
        lock(&self.0.log).push((Instant::now(), said.clone()));
        Ok(said)
    }

    /// Every change carried out, oldest first.
    pub fn log(&self) -> Vec<(Instant, String)> {
        lock(&self.0.log).clone()
    }

    /// Whether any scenario has a knob (the dashboard shows its controls).
    pub fn steerable(&self) -> bool {
        !lock(&self.0.scenarios).is_empty()
    }

    fn set_paused(&self, paused: bool) -> String {
        self.0.paused.0.send_replace(paused);
        if paused {
            "paused: no new iterations start until resumed".into()
        } else {
            "resumed".into()
        }
    }

    fn set_vus(&self, scenario: Option<&str>, vus: u64) -> Result<String, String> {
        let scenarios = lock(&self.0.scenarios);
        let picked = pick(&scenarios, scenario, "VU count", |s| {
            matches!(s, Steered::Vus { .. })
        })?;
        for (name, s) in &picked {
            if let Steered::Vus { max, .. } = s
                && vus > *max
            {
                return Err(format!(
                    "scenario `{name}` has maxVUs {max}; ask for at most {max} VUs, or raise maxVUs in the config"
                ));
            }
        }
        for (_, s) in &picked {
            if let Steered::Vus { now, .. } = s {
                now.send_replace(vus);
            }
        }
        Ok(format!("{} now at {vus} VUs", names(&picked)))
    }

    fn set_rate(&self, scenario: Option<&str>, factor: f64) -> Result<String, String> {
        if !(0.0..=MAX_FACTOR).contains(&factor) {
            return Err(format!(
                "a rate factor is a number from 0 to {MAX_FACTOR} (1 is the configured rate); `{factor}` is not"
            ));
        }
        let scenarios = lock(&self.0.scenarios);
        let picked = pick(&scenarios, scenario, "rate factor", |s| {
            matches!(s, Steered::Rate(_))
        })?;
        for (_, s) in &picked {
            if let Steered::Rate(tx) = s {
                tx.send_replace(factor);
            }
        }
        Ok(format!(
            "{} now at {factor}× the configured rate",
            names(&picked)
        ))
    }
}

/// What `change` would do to a run of these scenarios, or what is wrong
/// with it: a cluster's leader checks a change against the config before
/// it asks every node to apply it.
pub fn check<'a>(
    scenarios: impl IntoIterator<Item = (&'a str, &'a Executor)>,
    change: &Change,
) -> Result<String, String> {
    let s = Steering::new();
    for (name, executor) in scenarios {
        s.register(&name.into(), executor);
    }
    s.apply(change)
}

/// What an executor follows.
#[derive(Clone)]
pub(crate) enum Knob {
    Vus(watch::Receiver<u64>),
    Rate(watch::Receiver<f64>),
    None,
}

/// The scenarios a change names (or all it applies to), or why none.
fn pick<'a>(
    scenarios: &'a BTreeMap<Arc<str>, Steered>,
    scenario: Option<&str>,
    what: &str,
    takes: impl Fn(&Steered) -> bool,
) -> Result<Vec<(&'a str, &'a Steered)>, String> {
    let kind = |s: &Steered| match s {
        Steered::Vus { .. } => "externally-controlled",
        Steered::Rate(_) => "an arrival rate",
        Steered::Fixed(name) => name,
    };
    match scenario {
        Some(name) => match scenarios.get_key_value(name) {
            Some((n, s)) if takes(s) => Ok(vec![(&**n, s)]),
            Some((_, s)) => Err(format!(
                "scenario `{name}` is {} and takes no {what}: VU counts go to externally-controlled scenarios, rate factors to arrival rates",
                kind(s)
            )),
            None => Err(format!(
                "there is no scenario `{name}`; the run has: {}",
                scenarios
                    .keys()
                    .map(|k| &**k)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
        None => {
            let picked: Vec<_> = scenarios
                .iter()
                .filter(|(_, s)| takes(s))
                .map(|(n, s)| (&**n, s))
                .collect();
            if picked.is_empty() {
                return Err(format!(
                    "no scenario of this run takes a {what}: VU counts go to externally-controlled scenarios, rate factors to arrival rates"
                ));
            }
            Ok(picked)
        }
    }
}

fn names(picked: &[(&str, &Steered)]) -> String {
    let names: Vec<String> = picked.iter().map(|(n, _)| format!("`{n}`")).collect();
    names.join(", ")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn steering() -> (Steering, Knob, Knob) {
        let s = Steering::new();
        let ext = s.register(
            &"ext".into(),
            &Executor::ExternallyControlled {
                vus: 2,
                max_vus: 10,
                duration: Duration::from_secs(60),
            },
        );
        let rate = s.register(
            &"open".into(),
            &Executor::ConstantArrivalRate {
                rate: 10,
                time_unit: Duration::from_secs(1),
                duration: Duration::from_secs(60),
                pre_allocated_vus: 1,
                max_vus: 1,
            },
        );
        s.register(
            &"closed".into(),
            &Executor::ConstantVus {
                vus: 1,
                duration: Duration::from_secs(1),
            },
        );
        (s, ext, rate)
    }

    #[test]
    fn a_vu_count_goes_to_externally_controlled_scenarios_up_to_max_vus() {
        let (s, ext, _) = steering();
        let Knob::Vus(rx) = ext else { panic!() };
        assert_eq!(*rx.borrow(), 2);
        s.apply(&Change::Vus {
            scenario: None,
            vus: 7,
        })
        .unwrap();
        assert_eq!(*rx.borrow(), 7);
        let err = s
            .apply(&Change::Vus {
                scenario: None,
                vus: 11,
            })
            .unwrap_err();
        assert!(err.contains("maxVUs 10"), "{err}");
        assert_eq!(*rx.borrow(), 7, "a refused change changes nothing");
        let err = s
            .apply(&Change::Vus {
                scenario: Some("closed".into()),
                vus: 3,
            })
            .unwrap_err();
        assert!(err.contains("constant-vus"), "{err}");
        let err = s
            .apply(&Change::Vus {
                scenario: Some("nope".into()),
                vus: 3,
            })
            .unwrap_err();
        assert!(err.contains("closed, ext, open"), "{err}");
    }

    #[test]
    fn a_rate_factor_goes_to_arrival_rates_within_bounds() {
        let (s, _, rate) = steering();
        let Knob::Rate(rx) = rate else { panic!() };
        s.apply(&Change::Rate {
            scenario: None,
            factor: 0.5,
        })
        .unwrap();
        assert_eq!(*rx.borrow(), 0.5);
        for bad in [-1.0, f64::NAN, 1e9] {
            assert!(
                s.apply(&Change::Rate {
                    scenario: None,
                    factor: bad
                })
                .is_err()
            );
        }
        assert_eq!(*rx.borrow(), 0.5);
        assert_eq!(s.log().len(), 1, "only what was carried out is logged");
    }

    #[test]
    fn pause_and_resume_reach_every_executor() {
        let (s, _, _) = steering();
        let rx = s.paused();
        s.apply(&Change::Pause).unwrap();
        assert!(*rx.borrow());
        s.apply(&Change::Resume).unwrap();
        assert!(!*rx.borrow());
    }
}
