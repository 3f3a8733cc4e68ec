//! A short soak, CI's stand-in for the 30-minute one of `benches/soak.py`:
//! a steady rate for a minute, standalone and on three real nodes,
//! sampling every few seconds what a long run accumulates (resident
//! memory, open files, the replicated state). After a warm-up each must
//! stay within bounds that a leak per request or per second would break,
//! and the report must equal the target's count.

mod common;

use common::cluster::{Cluster, LIMIT, with_reports};
use common::{BIN, Target, wait_bounded, write_config};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECS: u64 = 60;
/// VUs, connections and histograms are made in the first seconds.
const WARMUP: Duration = Duration::from_secs(20);
const EVERY: Duration = Duration::from_secs(5);
const RATE: u64 = 200;
/// Far above what the run needs after its warm-up (flat within a MiB or
/// two in the 30-minute soak), far below what a leak of a few hundred
/// bytes per request (12,000 of them) or per second would add.
const RSS_GROWTH_KIB: u64 = 8 << 10;

fn config(target: &Target) -> String {
    format!(
        "name: soak\ntarget: {}\nplugins: {{ steps: {{ builtin: http-steps }} }}\nscenarios:\n  s:\n    plugin: steps\n    executor: constant-arrival-rate\n    rate: {RATE}\n    duration: {SECS}s\n    preAllocatedVUs: 10\n    maxVUs: 10\n    params: {{ steps: [ {{ request: {{ path: / }}, assert: [ {{ status: 200 }} ] }} ] }}\n",
        target.url
    )
}

/// Resident KiB and open files of a live process.
fn sample(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

/// Samples `pids` every [`EVERY`] from the end of the warm-up while
/// `going` holds; `extra` is read at each sample too.
fn sample_run<T>(
    started: Instant,
    pids: &[u32],
    mut going: impl FnMut() -> bool,
    mut extra: impl FnMut() -> T,
) -> (Vec<Vec<(u64, usize)>>, Vec<T>) {
    let mut per = vec![Vec::new(); pids.len()];
    let mut extras = Vec::new();
    let mut next = started + WARMUP;
    while going() {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        next += EVERY;
        for (i, pid) in pids.iter().enumerate() {
            if let Some(s) = sample(*pid) {
                per[i].push(s);
            }
        }
        extras.push(extra());
    }
    (per, extras)
}

fn assert_flat(what: &str, samples: &[(u64, usize)]) {
    assert!(samples.len() >= 5, "{what}: only {samples:?}");
    let (rss0, fds0) = samples[0];
    let rss_max = samples.iter().map(|s| s.0).max().unwrap();
    let fds_max = samples.iter().map(|s| s.1).max().unwrap();
    assert!(
        rss_max - rss0 < RSS_GROWTH_KIB,
        "{what}: resident memory grew from {rss0} to {rss_max} KiB after the warm-up: {samples:?}"
    );
    assert!(
        fds_max <= fds0 + 8,
        "{what}: open files went from {fds0} to {fds_max}: {samples:?}"
    );
}

#[test]
fn a_steady_standalone_minute_keeps_memory_and_files_flat() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &config(&target));
    let report = dir.path().join("report.json");
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["run", "-q", "--json", report.to_str().unwrap()])
        .arg(&cfg)
        .env_remove("CLUSTER_ENABLED")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (per, _) = sample_run(
        started,
        &[pid],
        || matches!(child.try_wait(), Ok(None)),
        || (),
    );
    let code = wait_bounded(&mut child, Duration::from_secs(60));
    assert_eq!(code, 0);
    assert_flat("standalone", &per[0]);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    let requests = r["totals"]["requests"].as_u64().unwrap();
    assert_eq!(requests, target.received());
    let dropped = r["totals"]["dropped_iterations"].as_u64().unwrap();
    assert_eq!(requests + dropped, RATE * SECS, "{r}");
}

#[test]
fn a_steady_cluster_minute_keeps_memory_files_and_state_growth_bounded() {
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &config(&target));
    let mut c = Cluster::new(3, None);
    for i in 0..3 {
        c.start(i);
    }
    let (leader, _) = c.await_agreement(LIMIT);
    let started = Instant::now();
    let mut run = with_reports(
        dir.path(),
        &["submit", cfg.to_str().unwrap(), "--node", &c.peers],
        None,
    );
    let pids: Vec<u32> = c
        .nodes
        .iter()
        .map(|n| n.child.as_ref().unwrap().id())
        .collect();
    let state = || c.state(leader).and_then(|s| s["state_bytes"].as_u64());
    let (per, states) = sample_run(started, &pids, || !run.ended(), state);
    let out = run.finish();
    assert_eq!(out.code, 0, "{}", out.output);
    for (i, samples) in per.iter().enumerate() {
        assert_flat(&c.nodes[i].name, samples);
    }
    // The replicated state keeps each second of the last ten minutes, so
    // it grows through this minute by about the merged second's size;
    // per-node or per-request growth would show many times that.
    let states: Vec<u64> = states.into_iter().flatten().collect();
    let (first, last) = (states[0], *states.last().unwrap());
    let per_second = (last - first) / (EVERY.as_secs() * (states.len() as u64 - 1)).max(1);
    assert!(
        per_second < 16 << 10,
        "the replicated state grew {per_second} bytes a second: {states:?}"
    );
    let r = &out.report;
    let requests = r["totals"]["requests"].as_u64().unwrap();
    assert_eq!(requests, target.received());
    let dropped = r["totals"]["dropped_iterations"].as_u64().unwrap();
    assert_eq!(requests + dropped, RATE * SECS, "{r}");
}
