//! With `DISCOVERY_MODE=gcs`: every node rewrites a heartbeat object
//! `<prefix>/nodes/<node-id>` (its address and Raft state, as the
//! object's metadata and body) every `GCS_HEARTBEAT_SECS`; its peers are
//! the heartbeats younger than `GCS_HEARTBEAT_TTL_SECS` by the store's
//! clock, and older ones are purged.
//!
//! Who forms the cluster is settled by the store, not by timing: the node
//! that creates `<prefix>/bootstrap` with the precondition "does not exist"
//! (generation 0) initialises Raft; every other create fails. A claim
//! whose owner's heartbeat has gone stale is deleted at its generation
//! (so a claim renewed meanwhile stays) and the race runs again. The
//! bucket registry this follows left that decision to "lowest address
//! seen", which two nodes with different views could both believe.

use crate::node::NodeCtx;
use crate::settings::{Bucket, Discovery, Settings};
use loadtest_backends::gcs::{Gcs, Listed, Problem};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Heartbeats {
    gcs: Gcs,
    cfg: Bucket,
    node_id: String,
    /// The last listing, reused for a heartbeat interval.
    cache: Mutex<Option<(Instant, Vec<Listed>)>>,
    /// The last error listing peers and writing the heartbeat, so each
    /// is logged once.
    list_error: Mutex<String>,
    beat_error: Mutex<String>,
}

/// The body of a claim.
#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    node_id: String,
    addr: String,
    voters: Vec<String>,
}

/// How a bootstrap claim went.
pub enum Claimed {
    /// This node created the claim: it forms the cluster.
    Won,
    /// Another live node holds it.
    Held { by: String },
    /// A stale claim was removed; look again.
    Cleared { by: String },
}

impl Heartbeats {
    pub async fn new(settings: &Settings) -> anyhow::Result<Option<Heartbeats>> {
        let Discovery::Bucket(cfg) = &settings.discovery else {
            return Ok(None);
        };
        let gcs = Gcs::new()
            .await
            .map_err(|e| anyhow::anyhow!("DISCOVERY_MODE=gcs: {e}"))?;
        Ok(Some(Heartbeats {
            gcs,
            cfg: cfg.clone(),
            node_id: settings.node_id.clone(),
            cache: Mutex::new(None),
            list_error: Mutex::new(String::new()),
            beat_error: Mutex::new(String::new()),
        }))
    }

    fn nodes_prefix(&self) -> String {
        format!("{}/nodes/", self.cfg.prefix)
    }

    fn claim_name(&self) -> String {
        format!("{}/bootstrap", self.cfg.prefix)
    }

    fn where_(&self) -> String {
        format!("gs://{}/{}", self.cfg.bucket, self.cfg.prefix)
    }

    /// Logs a problem once; an empty one clears the memory.
    fn report(last: &Mutex<String>, problem: String) {
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        if !problem.is_empty() && problem != *last {
            tracing::warn!("{problem}");
        }
        *last = problem;
    }

    /// Writes this node's heartbeat.
    async fn beat(&self, me: &str, state: &str) -> Result<(), Problem> {
        let name = format!("{}{}", self.nodes_prefix(), self.node_id);
        let body = serde_json::json!({
            "node_id": self.node_id,
            "addr": me,
            "state": state,
            "at_ms": crate::coordinator::now_ms(),
        });
        let meta = [("addr", me), ("state", state)];
        self.gcs
            .write_with(
                &self.cfg.bucket,
                &name,
                body.to_string().into_bytes(),
                None,
                &meta,
            )
            .await
            .map(|_| ())
    }

    /// The heartbeats under the prefix, listed at most once an interval;
    /// stale ones are purged on the way.
    async fn listing(&self) -> Result<Vec<Listed>, Problem> {
        if let Some((at, l)) = &*self.cache.lock().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < self.cfg.every.min(Duration::from_secs(1))
        {
            return Ok(l.clone());
        }
        let all = self
            .gcs
            .list(&self.cfg.bucket, &self.nodes_prefix())
            .await?;
        let (fresh, stale): (Vec<Listed>, Vec<Listed>) =
            all.into_iter().partition(|l| l.age < self.cfg.ttl);
        for l in stale {
            match self
                .gcs
                .delete(&self.cfg.bucket, &l.name, l.generation)
                .await
            {
                Ok(()) => tracing::info!(
                    "purged the stale heartbeat gs://{}/{} (last written {}s ago)",
                    self.cfg.bucket,
                    l.name,
                    l.age.as_secs()
                ),
                Err(Problem::Precondition) => {}
                Err(e) => tracing::debug!("purging {}: {e}", l.name),
            }
        }
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// This node and the addresses in fresh heartbeats, sorted.
    pub async fn peers(&self, me: &str) -> Vec<String> {
        let mut peers: Vec<String> = match self.listing().await {
            Ok(l) => {
                Self::report(&self.list_error, String::new());
                l.into_iter()
                    .filter_map(|l| l.metadata.get("addr").cloned())
                    .collect()
            }
            Err(e) => {
                Self::report(
                    &self.list_error,
                    format!("finding peers in {}: {e}", self.where_()),
                );
                Vec::new()
            }
        };
        peers.push(me.to_owned());
        peers.sort();
        peers.dedup();
        peers
    }

    /// Tries to become the node that forms the cluster, with `voters` as
    /// its first members.
    pub async fn claim(&self, me: &str, voters: &[String]) -> Result<Claimed, Problem> {
        let body = Claim {
            node_id: self.node_id.clone(),
            addr: me.to_owned(),
            voters: voters.to_vec(),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let name = self.claim_name();
        match self
            .gcs
            .write(&self.cfg.bucket, &name, bytes, Some(0))
            .await
        {
            Ok(_) => return Ok(Claimed::Won),
            Err(Problem::Precondition) => {}
            Err(e) => return Err(e),
        }
        let Some((text, generation)) = self.gcs.read(&self.cfg.bucket, &name).await? else {
            return Ok(Claimed::Cleared {
                by: "nobody (it was just removed)".into(),
            });
        };
        let holder: Option<Claim> = serde_json::from_slice(&text).ok();
        let by = holder
            .as_ref()
            .map_or("an unreadable claim".to_owned(), |c| {
                format!("{} ({})", c.node_id, c.addr)
            });
        if holder.as_ref().is_some_and(|c| c.addr == me) {
            // This node claimed it before and lost its Raft state since.
            return Ok(Claimed::Won);
        }
        let live = self.peers(me).await;
        if holder.as_ref().is_some_and(|c| live.contains(&c.addr)) {
            return Ok(Claimed::Held { by });
        }
        let age = self
            .gcs
            .list(&self.cfg.bucket, &name)
            .await?
            .into_iter()
            .find(|l| l.name == name)
            .map_or(Duration::ZERO, |l| l.age);
        if age < self.cfg.ttl {
            // Its owner may not have written a heartbeat yet.
            return Ok(Claimed::Held { by });
        }
        self.gcs.delete(&self.cfg.bucket, &name, generation).await?;
        tracing::info!(
            "removed the bootstrap claim of {by}, whose node has no fresh heartbeat (claimed {}s ago)",
            age.as_secs()
        );
        Ok(Claimed::Cleared { by })
    }

    /// Removes this node's heartbeat (graceful shutdown).
    async fn remove(&self) -> Result<(), Problem> {
        let name = format!("{}{}", self.nodes_prefix(), self.node_id);
        let listed = self.gcs.list(&self.cfg.bucket, &name).await?;
        for l in listed.into_iter().filter(|l| l.name == name) {
            self.gcs
                .delete(&self.cfg.bucket, &l.name, l.generation)
                .await?;
        }
        Ok(())
    }
}

/// Rewrites the heartbeat every interval, and at once when the Raft
/// state changes, so the state in it stays current.
pub async fn keep_beating(ctx: Arc<NodeCtx>) {
    let (Some(hb), Some(me)) = (ctx.heartbeats(), ctx.addr()) else {
        return;
    };
    let mut last_state = "";
    let mut last_beat: Option<Instant> = None;
    loop {
        let state = ctx.health().state;
        if state != last_state || last_beat.is_none_or(|t| t.elapsed() >= hb.cfg.every) {
            match hb.beat(&me, state).await {
                Ok(()) => {
                    if last_beat.is_none() {
                        tracing::info!("writing heartbeats to {}", hb.where_());
                    }
                    last_beat = Some(Instant::now());
                    last_state = state;
                    Heartbeats::report(&hb.beat_error, String::new());
                }
                Err(e) => Heartbeats::report(
                    &hb.beat_error,
                    format!("writing the heartbeat to {}: {e}; retrying", hb.where_()),
                ),
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Removes the heartbeat, bounded in time, so peers drop this node at once.
pub async fn remove(ctx: &NodeCtx) {
    let Some(hb) = ctx.heartbeats() else { return };
    match tokio::time::timeout(Duration::from_secs(3), hb.remove()).await {
        Ok(Ok(())) => tracing::info!("removed the heartbeat from {}", hb.where_()),
        Ok(Err(e)) => tracing::warn!("removing the heartbeat: {e}"),
        Err(_) => tracing::warn!("GCS did not answer the heartbeat removal within 3s"),
    }
}
