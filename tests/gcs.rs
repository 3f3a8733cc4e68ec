//! GCS as the cluster's config source and discovery registry, against a
//! GCS emulator (fake-gcs-server, scripts/fake-gcs.sh) and a stand-in GCE
//! metadata server for Application Default Credentials, with real node
//! processes: push then a 3-node run; each unfixable source error logged
//! and recorded once, across polls and a leader change, with no election
//! storm; heartbeat discovery, expiry, and racing bootstraps.

mod common;

use common::cluster::{Cluster, LIMIT, arrival, serial, shared_config, with_reports};
use common::gcs::{Emulator, Metadata, Token};
use common::{BIN, Target, component, wait_bounded};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The environment every GCS user here shares: the emulator, the token.
fn gcs_env(emu: &Emulator, md: &Metadata) -> Vec<(String, String)> {
    vec![
        ("STORAGE_EMULATOR_HOST".into(), emu.host.clone()),
        ("GCE_METADATA_HOST".into(), md.host.clone()),
        // No developer's own gcloud login may stand in for the metadata server.
        ("HOME".into(), "/nonexistent".into()),
        (
            "RUST_LOG".into(),
            "warn,loadtest=info,loadtest::cluster::sources=debug".into(),
        ),
    ]
}

/// `loadtest push <cfg> --gcs <url>`; returns (exit code, stderr).
fn push(cfg: &Path, url: &str, env: &[(String, String)]) -> (i32, String) {
    let mut child = Command::new(BIN)
        .arg("push")
        .arg(cfg)
        .args(["--gcs", url])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_bounded(&mut child, LIMIT);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (code, err)
}

fn start_all(c: &mut Cluster, env: &[(String, String)], extra: &[(&str, &str)]) {
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(extra);
    for i in 0..c.nodes.len() {
        c.start_with(i, &all);
    }
}

fn logs(c: &Cluster) -> String {
    c.nodes
        .iter()
        .map(|n| std::fs::read_to_string(&n.log).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits (bounded) until `ok` holds.
fn await_true(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_pushed_config_and_plugin_run_from_the_bucket_on_three_nodes() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start(&["configs"]);
    let md = Metadata::start(Token::Grant);
    let env = gcs_env(&emu, &md);
    let target = Target::start();
    let cfg = shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &arrival(100, 3),
    );

    let (code, err) = push(&cfg, "gs://configs/team/test.yaml", &env);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 object(s)"), "{err}");
    let stored = emu.list("configs", "team/");
    assert_eq!(stored.len(), 2, "the config and its plugin: {stored:?}");
    assert!(
        md.token_requests() >= 1,
        "push took its token from the metadata server"
    );

    let mut c = Cluster::new(3, None);
    start_all(
        &mut c,
        &env,
        &[
            ("CLUSTER_CONFIG_SOURCE", "gcs"),
            ("GCS_CONFIG_BUCKET", "configs"),
            ("GCS_CONFIG_OBJECT", "team/test.yaml"),
        ],
    );
    c.await_agreement(LIMIT);
    let out = with_reports(dir.path(), &["report", "--node", &c.peers], None).finish();

    assert_eq!(out.code, 0, "{}", out.output);
    assert_eq!(out.report["totals"]["iterations"], 300, "{}", out.output);
    assert_eq!(
        out.report["totals"]["requests"].as_u64().unwrap(),
        target.received()
    );
    assert_eq!(out.report["cluster"]["nodes"].as_array().unwrap().len(), 2);
    assert!(logs(&c).contains("started the config at gs://configs/team/test.yaml (generation"));
}

/// Waits for `needle` in the logs, then for `polls` more looks at the
/// source; returns how often `needle` was logged by then.
fn logged_once_over_polls(c: &Cluster, needle: &str, polls: usize) -> usize {
    await_true(needle, LIMIT, || aborts(c, needle) >= 1);
    let looks = |l: &str| l.matches("looked at gs://").count();
    let base = looks(&logs(c));
    await_true("further looks at the source", LIMIT, || {
        looks(&logs(c)) >= base + polls
    });
    aborts(c, needle)
}

/// Abort lines that contain `needle`.
fn aborts(c: &Cluster, needle: &str) -> usize {
    logs(c)
        .lines()
        .filter(|l| l.contains("is aborted:") && l.contains(needle))
        .count()
}

fn term_of(c: &Cluster, i: usize) -> u64 {
    c.health(i).unwrap()["term"].as_u64().unwrap()
}

#[test]
fn each_source_error_aborts_once_without_an_election_storm_until_fixed() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::start(&[]);
    let md = Metadata::start(Token::Deny);
    let env = gcs_env(&emu, &md);
    let target = Target::start();
    let mut c = Cluster::new(3, None);
    start_all(
        &mut c,
        &env,
        &[
            ("CLUSTER_CONFIG_SOURCE", "gcs"),
            ("GCS_CONFIG_BUCKET", "later"),
            ("GCS_CONFIG_OBJECT", "test.yaml"),
            ("GCS_POLL_SECS", "1"),
            ("CLUSTER_CONFIG_TIMEOUT_SECS", "3"),
            ("CLUSTER_NODE_LOST_SECS", "3"),
        ],
    );
    let (leader, term) = c.await_agreement(LIMIT);

    // The token denied (403 from the metadata server).
    let n = logged_once_over_polls(
        &c,
        "is aborted: reading gs://later/test.yaml: no usable Google credentials",
        3,
    );
    assert_eq!(n, 1, "{}", logs(&c));
    assert_eq!(term_of(&c, leader), term, "no election");
    let state = c.state(leader).unwrap();
    assert!(
        state["data"]["source/failed"]
            .as_str()
            .unwrap()
            .contains("credentials"),
        "{state}"
    );

    // The token endpoint failing (500): the auth library calls it
    // transient; once it outlasts CLUSTER_CONFIG_TIMEOUT_SECS, one abort.
    md.set(Token::Fail);
    let n = logged_once_over_polls(&c, "still failing after CLUSTER_CONFIG_TIMEOUT_SECS=3s", 2);
    assert_eq!(n, 1, "{}", logs(&c));

    // Credentials work; the bucket is missing.
    md.set(Token::Grant);
    let needle = "bucket `later` does not exist";
    let n = logged_once_over_polls(&c, needle, 3);
    assert_eq!(n, 1, "{}", logs(&c));
    assert_eq!(term_of(&c, leader), term, "no election");

    // A new leader finds the error recorded and stays quiet.
    c.kill(leader);
    c.await_agreement(LIMIT);
    let n = logged_once_over_polls(&c, needle, 3);
    assert_eq!(n, 1, "a new leader repeated the abort: {}", logs(&c));

    // The bucket appears; the object is missing.
    emu.create_bucket("later");
    let needle = "gs://later/test.yaml does not exist (GCS_CONFIG_BUCKET, GCS_CONFIG_OBJECT); upload it: loadtest push config.yaml --gcs gs://later/test.yaml";
    let n = logged_once_over_polls(&c, needle, 3);
    assert_eq!(n, 1, "{}", logs(&c));
    assert_eq!(target.received(), 0);

    // Fixed: the pushed config runs on the two nodes left.
    let cfg = shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &arrival(50, 2),
    );
    let (code, err) = push(&cfg, "gs://later/test.yaml", &env);
    assert_eq!(code, 0, "{err}");
    let live: Vec<String> = c
        .running()
        .iter()
        .map(|i| c.nodes[*i].raft.clone())
        .collect();
    let out = with_reports(dir.path(), &["report", "--node", &live.join(",")], None).finish();
    assert_eq!(out.code, 0, "{}", out.output);
    assert_eq!(
        out.report["totals"]["iterations"],
        100,
        "{}\n{}",
        out.output,
        logs(&c)
    );
    assert_eq!(
        out.report["totals"]["requests"].as_u64().unwrap(),
        target.received()
    );
    assert_eq!(
        logs(&c).matches("is aborted:").count(),
        4,
        "one abort per distinct error: {}",
        logs(&c)
    );
}
