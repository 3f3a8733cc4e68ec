//! What a node keeps for runs outside the replicated state: shipped
//! bytes, Bundles built and compiled from them, the WASM runtime, and
//! (on the leader) when each assignment last reported.

use crate::blobs::BlobStore;
use crate::liveness::Liveness;
use loadtest_engine::config::Bundle;
use loadtest_engine::plugin::Runtime;
use loadtest_wire::plan::Plan;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

#[derive(Default)]
pub struct Local {
    pub blobs: BlobStore,
    runtime: OnceLock<Arc<Runtime>>,
    /// Bundles compiled for a run, by config version.
    prepared: Mutex<HashMap<String, Arc<Bundle>>>,
    /// Leader only: when each (run, assignment) last reported.
    pub last_seen: Mutex<HashMap<(String, u32), Instant>>,
    /// Leader only: the run this node is distributing right now.
    pub distributing: Mutex<Option<String>>,
    /// Leader only: when `abortOnFail` thresholds were last evaluated.
    threshold_checked: Mutex<Option<Instant>>,
    /// Leader only: when each peer last answered; Raft's transport
    /// records its answers here too.
    pub liveness: Arc<Liveness>,
    /// Leader only: the live view of the run it publishes (`/metrics`).
    pub published: Mutex<Option<loadtest_engine::workload::Live>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Local {
    /// A node's own state, its blobs kept in `blob_dir`.
    pub fn with_blobs(blob_dir: std::path::PathBuf, max_bytes: u64) -> anyhow::Result<Self> {
        Ok(Local {
            blobs: BlobStore::on_disk(blob_dir, max_bytes)?,
            ..Local::default()
        })
    }

    pub fn runtime(&self) -> anyhow::Result<Arc<Runtime>> {
        if let Some(r) = self.runtime.get() {
            return Ok(r.clone());
        }
        let r = Arc::new(Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?);
        Ok(self.runtime.get_or_init(|| r).clone())
    }

    pub fn seen(&self, run: &str, assignment: u32) {
        lock(&self.last_seen).insert((run.to_owned(), assignment), Instant::now());
    }

    pub fn last_seen(&self, run: &str, assignment: u32) -> Option<Instant> {
        lock(&self.last_seen)
            .get(&(run.to_owned(), assignment))
            .copied()
    }

    /// Whether a second has passed since thresholds were last evaluated
    /// (merging every interval is not free; the drive loop wakes often).
    pub fn threshold_check_due(&self) -> bool {
        let mut last = lock(&self.threshold_checked);
        if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1)) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    pub fn set_distributing(&self, run: Option<String>) {
        *lock(&self.distributing) = run;
    }

    pub fn is_distributing(&self, run: &str) -> bool {
        lock(&self.distributing).as_deref() == Some(run)
    }

    /// The Bundle of the config version a share runs: the plan's current
    /// one, or (a share of the config a switch replaced) the one this
    /// node compiled before.
    pub async fn prepare_share(
        &self,
        plan: &Plan,
        a: &loadtest_wire::plan::Assignment,
    ) -> Result<Arc<Bundle>, String> {
        if a.version.is_empty() || a.version == plan.version {
            return self.prepare(plan).await;
        }
        lock(&self.prepared)
            .get(&a.version)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "config version {} is no longer on this node (the run switched to {})",
                    a.version, plan.version
                )
            })
    }

    /// The plan's Bundle, built from the shipped blobs and compiled once
    /// per config version; later calls get the same one.
    pub async fn prepare(&self, plan: &Plan) -> Result<Arc<Bundle>, String> {
        if let Some(b) = lock(&self.prepared).get(&plan.version) {
            return Ok(b.clone());
        }
        let fetch = |what: &str, m: &BTreeMap<String, String>| {
            m.iter()
                .map(|(name, d)| {
                    self.blobs.get(d).map(|b| (name.clone(), b)).ok_or_else(|| {
                        format!("{what} `{name}` ({d}) has not arrived on this node")
                    })
                })
                .collect::<Result<BTreeMap<_, _>, String>>()
        };
        let plugins = fetch("plugin", &plan.plugins)?;
        let files = fetch("data file", &plan.files)?;
        let bundle = Bundle::from_shipped(&plan.name, &plan.yaml, plugins, files)
            .map_err(|e| e.to_string())?;
        let runtime = self.runtime().map_err(|e| format!("{e:#}"))?;
        let compiled = bundle.clone();
        tokio::task::spawn_blocking(move || {
            for (name, p) in &compiled.plugins {
                runtime
                    .load(name, p)
                    .map_err(|e| format!("plugin `{name}`: {e}"))?;
            }
            Ok::<_, String>(())
        })
        .await
        .map_err(|e| format!("compiling plugins: {e}"))??;
        let bundle = Arc::new(bundle);
        let mut prepared = lock(&self.prepared);
        let bundle = prepared
            .entry(plan.version.clone())
            .or_insert(bundle)
            .clone();
        self.forget_unused(plan, &mut prepared);
        Ok(bundle)
    }

    /// Drops the bundles, blobs and compiled plugins of config versions no
    /// share of `plan` runs any more, so a long-lived node holds what its
    /// runs use and no more. A switch keeps the version it replaces for as
    /// long as a share of it is in the plan.
    fn forget_unused(&self, plan: &Plan, prepared: &mut HashMap<String, Arc<Bundle>>) {
        let live: std::collections::HashSet<&str> = std::iter::once(plan.version.as_str())
            .chain(plan.assignments.iter().map(|a| a.version.as_str()))
            .collect();
        prepared.retain(|version, _| live.contains(version.as_str()));
        let digests: std::collections::HashSet<String> = prepared
            .values()
            .flat_map(|b| {
                b.plugins
                    .values()
                    .map(|p| p.digest.clone())
                    .chain(b.files.values().map(|f| crate::blobs::digest(f)))
            })
            .chain(plan.plugins.values().cloned())
            .chain(plan.files.values().cloned())
            .collect();
        self.blobs.retain(&digests);
        if let Some(runtime) = self.runtime.get() {
            runtime.retain(&digests);
        }
    }
}
