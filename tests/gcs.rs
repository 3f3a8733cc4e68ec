//! GCS as the cluster's config source and discovery registry, against a
//! GCS emulator (fake-gcs-server, scripts/fake-gcs.sh) and a stand-in GCE
//! metadata server for Application Default Credentials, with real node
//! processes: push then a 3-node run; each unfixable source error logged
//! and recorded once, across polls and a leader change, with no election
//! storm; heartbeat discovery, expiry, and racing bootstraps.

mod common;

use common::cluster::{
    Cluster, LIMIT, arrival, await_true, first_iteration_ms, now_ms, rate_config, serial,
    shared_config, switched_mid_run, with_reports,
};
use common::gcs::{Emulator, Metadata, Token};
use common::{BIN, Target, component, wait_bounded};
use std::path::Path;
use std::process::{Command, Stdio};

/// The emulator, the metadata stand-in, and the environment every GCS
/// user here shares.
struct Bed {
    emu: Emulator,
    md: Metadata,
    env: Vec<(String, String)>,
}

impl Bed {
    fn start(buckets: &[&str], token: Token) -> Bed {
        let emu = Emulator::start(buckets);
        let md = Metadata::start(token);
        let env = gcs_env(&emu, &md);
        Bed { emu, md, env }
    }

    /// `n` nodes reading their config from gs://bucket/object.
    fn source_cluster(
        &self,
        n: usize,
        bucket: &str,
        object: &str,
        extra: &[(&str, &str)],
    ) -> Cluster {
        let mut c = Cluster::new(n, None);
        let mut all = vec![
            ("CLUSTER_CONFIG_SOURCE", "gcs"),
            ("GCS_CONFIG_BUCKET", bucket),
            ("GCS_CONFIG_OBJECT", object),
        ];
        all.extend_from_slice(extra);
        start_all(&mut c, &self.env, &all);
        c
    }
}

fn gcs_env(emu: &Emulator, md: &Metadata) -> Vec<(String, String)> {
    vec![
        ("STORAGE_EMULATOR_HOST".into(), emu.host.clone()),
        ("GCE_METADATA_HOST".into(), md.host.clone()),
        // No developer's own gcloud login may stand in for the metadata server.
        ("HOME".into(), "/nonexistent".into()),
        (
            "RUST_LOG".into(),
            "warn,loadtest=info,loadtest_cluster::config_watch=debug".into(),
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

#[test]
fn a_pushed_config_and_plugin_run_from_the_bucket_on_three_nodes() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let bed = Bed::start(&["configs"], Token::Grant);
    let Bed { emu, md, env } = &bed;
    let target = Target::start();
    let cfg = shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &arrival(100, 3),
    );

    let (code, err) = push(&cfg, "gs://configs/team/test.yaml", env);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 object(s)"), "{err}");
    let stored = emu.list("configs", "team/");
    assert_eq!(stored.len(), 2, "the config and its plugin: {stored:?}");
    assert!(
        md.token_requests() >= 1,
        "push took its token from the metadata server"
    );

    let started = now_ms();
    let c = bed.source_cluster(3, "configs", "team/test.yaml", &[]);
    c.await_agreement(LIMIT);
    let out = with_reports(dir.path(), &["report", "--node", &c.peers], None).finish();

    assert_eq!(out.code, 0, "{}", out.output);
    assert_eq!(out.report["totals"]["iterations"], 300, "{}", out.output);
    assert_eq!(
        out.report["totals"]["requests"].as_u64().unwrap(),
        target.received()
    );
    assert_eq!(out.report["cluster"]["nodes"].as_array().unwrap().len(), 2);
    eprintln!(
        "nodes up to first iteration: {} ms",
        first_iteration_ms(&out.report).saturating_sub(started)
    );
    assert!(logs(&c).contains("started the config at gs://configs/team/test.yaml (generation"));
}

#[test]
fn a_new_generation_pushed_mid_run_is_switched_in() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let bed = Bed::start(&["configs"], Token::Grant);
    let env = &bed.env;
    let target = Target::start();
    let c = bed.source_cluster(3, "configs", "test.yaml", &[("GCS_POLL_SECS", "1")]);
    c.await_agreement(LIMIT);
    let first = rate_config(dir.path(), &target, "first", "browse", 50, 10);
    let second = rate_config(dir.path(), &target, "second", "checkout", 100, 3);

    assert_eq!(push(&first, "gs://configs/test.yaml", env).0, 0);
    await_true("100 requests at the target", || target.received() > 100);
    assert_eq!(push(&second, "gs://configs/test.yaml", env).0, 0);
    let out = with_reports(dir.path(), &["report", "--node", &c.peers], None).finish();

    switched_mid_run(&out, &target);
    let events = out.report["cluster"]["events"].to_string();
    assert!(
        events.contains("gs://configs/test.yaml (generation"),
        "{events}"
    );
}

/// Waits for `needle` in the logs, then for `polls` more looks at the
/// source; returns how often `needle` was logged by then.
fn logged_once_over_polls(c: &Cluster, needle: &str, polls: usize) -> usize {
    await_true(needle, || aborts(c, needle) >= 1);
    let looks = |l: &str| l.matches("looked at gs://").count();
    let base = looks(&logs(c));
    await_true("further looks at the source", || {
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
    let bed = Bed::start(&[], Token::Deny);
    let Bed { emu, md, env } = &bed;
    let target = Target::start();
    let mut c = bed.source_cluster(
        3,
        "later",
        "test.yaml",
        &[
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
    let (code, err) = push(&cfg, "gs://later/test.yaml", env);
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

/// Bucket discovery settings: heartbeats every second, stale after 3.
fn discovery(prefix: &str) -> Vec<(&str, &str)> {
    vec![
        ("DISCOVERY_MODE", "gcs"),
        ("GCS_DISCOVERY_BUCKET", "disc"),
        ("GCS_DISCOVERY_PREFIX", prefix),
        ("GCS_HEARTBEAT_SECS", "1"),
        ("GCS_HEARTBEAT_TTL_SECS", "3"),
        ("CLUSTER_BOOTSTRAP_EXPECT", "3"),
    ]
}

fn claims(c: &Cluster) -> usize {
    logs(c)
        .matches("this node claimed the bootstrap and initialises the cluster")
        .count()
}

/// Every node counts 3 members, and the leader has 3 voters.
fn one_cluster_of_three(c: &Cluster) {
    let (leader, _) = c.await_agreement(LIMIT);
    await_true("3 peers everywhere", || {
        c.running()
            .iter()
            .all(|i| c.health(*i).is_some_and(|h| h["peers"] == 3))
    });
    let voters = c.state(leader).unwrap()["voters"].as_array().unwrap().len();
    assert_eq!(voters, 3, "{}", logs(c));
}

#[test]
fn nodes_find_each_other_through_heartbeats_and_a_killed_nodes_heartbeat_expires() {
    let _g = serial();
    let Bed { emu, md, env } = Bed::start(&["disc"], Token::Grant);
    let mut c = Cluster::new(3, None);
    start_all(&mut c, &env, &discovery("team-a"));
    one_cluster_of_three(&c);
    assert_eq!(claims(&c), 1, "{}", logs(&c));

    let beats = emu.list("disc", "team-a/nodes/");
    assert_eq!(beats.len(), 3, "{beats:?}");
    let claim: serde_json::Value =
        serde_json::from_slice(&emu.get("disc", "team-a/bootstrap").unwrap()).unwrap();
    assert_eq!(claim["voters"].as_array().unwrap().len(), 3, "{claim}");

    let (leader, _) = c.await_agreement(LIMIT);
    let victim = (leader + 1) % 3;
    c.kill(victim);
    let gone = format!("team-a/nodes/{}", c.nodes[victim].name);
    await_true("the killed node's heartbeat to be purged", || {
        !emu.list("disc", "team-a/nodes/").contains(&gone)
    });
    assert_eq!(emu.list("disc", "team-a/nodes/").len(), 2);
    assert!(logs(&c).contains(&format!("purged the stale heartbeat gs://disc/{gone}")));
    assert!(md.token_requests() >= 1);
}

#[test]
fn racing_bootstraps_form_one_cluster_every_time() {
    let _g = serial();
    let Bed { emu, env, md: _md } = Bed::start(&["disc"], Token::Grant);
    // A claim left by a cluster that is gone: cleared once it is stale.
    emu.put(
        "disc",
        "race-0/bootstrap",
        br#"{"node_id":"old","addr":"127.0.0.1:1","voters":["127.0.0.1:1"]}"#,
    );
    let mut lost_races = 0;
    for round in 0..6 {
        let prefix = format!("race-{round}");
        let mut c = Cluster::new(3, None);
        start_all(&mut c, &env, &discovery(&prefix));
        one_cluster_of_three(&c);
        assert_eq!(claims(&c), 1, "round {round}: {}", logs(&c));
        lost_races += logs(&c).matches("claimed the bootstrap; waiting").count();
        if round == 0 {
            assert!(
                logs(&c).contains("removed the bootstrap claim of old (127.0.0.1:1)"),
                "{}",
                logs(&c)
            );
        }
    }
    eprintln!("claims refused by the store's precondition over 6 rounds: {lost_races}");
}

#[test]
fn push_errors_say_what_is_wrong_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let Bed { emu, md, env } = Bed::start(&["configs"], Token::Grant);
    let target = Target::start();
    let cfg = shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &arrival(10, 1),
    );

    let (code, err) = push(&cfg, "gs://nope/test.yaml", &env);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bucket `nope` does not exist"), "{err}");

    let (code, err) = push(&cfg, "configs/test.yaml", &env);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("write it as gs://bucket/path/config.yaml"),
        "{err}"
    );

    md.set(Token::Deny);
    let (code, err) = push(&cfg, "gs://configs/test.yaml", &env);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no usable Google credentials"), "{err}");
    assert!(emu.list("configs", "").is_empty(), "nothing was written");
}

#[test]
fn a_credentials_file_that_is_not_there_aborts_once() {
    let _g = serial();
    let bed = Bed::start(&["configs"], Token::Grant);
    let c = bed.source_cluster(
        1,
        "configs",
        "test.yaml",
        &[("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")],
    );
    c.await_agreement(LIMIT);
    await_true("the abort", || aborts(&c, "no Google credentials") == 1);
    let state = c.state(0).unwrap();
    let failed = state["data"]["source/failed"].as_str().unwrap_or_default();
    assert!(failed.contains("/nonexistent/key.json"), "{state}");
    assert_eq!(
        bed.md.token_requests(),
        0,
        "the key file, not the metadata server, was asked for"
    );
}
