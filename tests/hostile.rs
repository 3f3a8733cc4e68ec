//! Whatever a server or a scenario does, a run ends on time, names what
//! went wrong and keeps its memory bounded. One case per rule of the
//! HTTP/1.1 client, against a raw-socket server that breaks the rule on
//! purpose (`common::rawhttp`); and scenarios that spin or fail in a
//! tight loop beside one that keeps an arrival rate.

mod common;

use common::rawhttp::{RawServer, Reply, Stop, endless, endless_pace, hold_open};
use common::{RunResult, Target, component, run_loadtest, write_config};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// Every request's timeout in these runs: a case that ended by timing out
/// instead of by its rule would take three times this.
const TIMEOUT: &str = "30s";
/// Three iterations, the plugin's compile and the process's start: well
/// under one timeout.
const ON_TIME: Duration = Duration::from_secs(20);
/// Peak memory of one run. Without the body cap, the endless bodies
/// would take gigabytes.
const MEMORY_MIB: u64 = 250;

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";

/// Runs one VU for three iterations of the hostile plugin (which keeps
/// each response's body and headers) against `server`.
fn run_against(server: &RawServer) -> RunResult {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        &format!(
            "target: {}
plugins:
  hostile: {{ path: {} }}
http: {{ timeout: {TIMEOUT}, maxBodyBytes: 1048576 }}
scenarios:
  s: {{ plugin: hostile, executor: per-vu-iterations, vus: 1, iterations: 3, params: {{ mode: ok }} }}
",
            server.url,
            component("hostile").display()
        ),
    );
    run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()])
}

/// Error kinds over every request of the run.
fn errors(report: &Value) -> BTreeMap<String, u64> {
    let mut kinds = BTreeMap::new();
    for scenario in report["scenarios"].as_object().into_iter().flatten() {
        for request in scenario.1["requests"].as_object().into_iter().flatten() {
            for (kind, n) in request.1["errors"].as_object().into_iter().flatten() {
                *kinds.entry(kind.clone()).or_default() += n.as_u64().unwrap();
            }
        }
    }
    kinds
}

/// The run ended on time with bounded memory, and wrote a report.
fn assert_bounded(run: &RunResult) {
    assert_eq!(
        run.code, 0,
        "failed requests do not fail the run: {}",
        run.stderr
    );
    assert!(run.took < ON_TIME, "the run took {:?}", run.took);
    assert!(
        run.peak_rss_mib < MEMORY_MIB,
        "the run peaked at {} MiB",
        run.peak_rss_mib
    );
}

/// All three requests of a run against `reply` fail with `kind`, their
/// message saying `why`, and nothing is sent twice.
fn assert_refused(reply: Reply, kind: &str, why: &str) {
    let server = RawServer::start(reply, true);
    let run = run_against(&server);
    assert_bounded(&run);
    assert_eq!(
        errors(&run.report),
        BTreeMap::from([(kind.into(), 3)]),
        "{}",
        run.report
    );
    let messages = run.report["scenarios"]["s"]["failure_messages"].to_string();
    assert!(messages.contains(why), "{messages}");
    assert_eq!(server.requests(), 3, "each request was sent once");
}

fn write(s: &mut TcpStream, bytes: &[u8]) -> std::io::Result<bool> {
    s.write_all(bytes)?;
    Ok(false)
}

#[test]
fn an_endless_response_head_is_refused() {
    fn reply(s: &mut TcpStream, stop: &Stop) -> std::io::Result<bool> {
        endless(s, stop, b"HTTP/1.1 200 OK\r\nx-big: ", &[b'a'; 64 << 10])
    }
    assert_refused(reply, "protocol", "head is larger than 64 KiB");
}

#[test]
fn too_many_headers_are_refused() {
    fn reply(s: &mut TcpStream, _: &Stop) -> std::io::Result<bool> {
        let many = "x-n: 1\r\n".repeat(500);
        write(
            s,
            format!("HTTP/1.1 200 OK\r\n{many}content-length: 0\r\n\r\n").as_bytes(),
        )
    }
    assert_refused(reply, "protocol", "too many headers");
}

#[test]
fn a_slow_flood_of_interim_responses_ends_long_before_the_timeout() {
    fn reply(s: &mut TcpStream, stop: &Stop) -> std::io::Result<bool> {
        let pause = Duration::from_millis(20);
        endless_pace(s, stop, b"HTTP/1.1 100 Continue\r\n\r\n", pause)
    }
    assert_refused(reply, "protocol", "interim (1xx) responses");
}

#[test]
fn an_endless_chunk_extension_is_refused() {
    fn reply(s: &mut TcpStream, stop: &Stop) -> std::io::Result<bool> {
        endless(s, stop, &[CHUNKED, b"5;x="].concat(), &[b'a'; 4096])
    }
    assert_refused(reply, "protocol", "chunk-size line");
}

#[test]
fn endless_trailers_are_refused() {
    fn reply(s: &mut TcpStream, stop: &Stop) -> std::io::Result<bool> {
        endless(s, stop, &[CHUNKED, b"0\r\n"].concat(), b"x-trailer: t\r\n")
    }
    assert_refused(reply, "protocol", "trailers are too large");
}

#[test]
fn a_signed_content_length_is_refused() {
    fn reply(s: &mut TcpStream, _: &Stop) -> std::io::Result<bool> {
        write(s, b"HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\nhello")
    }
    assert_refused(reply, "protocol", "content-length");
}

#[test]
fn a_signed_chunk_size_is_refused() {
    fn reply(s: &mut TcpStream, _: &Stop) -> std::io::Result<bool> {
        write(
            s,
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
        )
    }
    assert_refused(reply, "protocol", "chunk");
}

#[test]
fn conflicting_content_lengths_are_refused() {
    fn reply(s: &mut TcpStream, _: &Stop) -> std::io::Result<bool> {
        write(
            s,
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 7\r\n\r\nhello",
        )
    }
    assert_refused(reply, "protocol", "content-length");
}

#[test]
fn an_endless_chunked_body_stops_at_the_cap() {
    fn reply(s: &mut TcpStream, stop: &Stop) -> std::io::Result<bool> {
        let chunk = [&b"10000\r\n"[..], &[b'z'; 0x10000], b"\r\n"].concat();
        endless(s, stop, CHUNKED, &chunk)
    }
    assert_refused(reply, "body_too_large", "http.maxBodyBytes");
}

#[test]
fn an_endless_body_read_until_close_stops_at_the_cap() {
    fn reply(s: &mut TcpStream, stop: &Stop) -> std::io::Result<bool> {
        endless(s, stop, b"HTTP/1.1 200 OK\r\n\r\n", &[b'z'; 64 << 10])
    }
    assert_refused(reply, "body_too_large", "http.maxBodyBytes");
}

#[test]
fn a_claimed_length_past_the_cap_is_refused_before_reading() {
    fn reply(s: &mut TcpStream, stop: &Stop) -> std::io::Result<bool> {
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1099511627776\r\n\r\n";
        endless(s, stop, head, &[b'z'; 64 << 10])
    }
    assert_refused(reply, "body_too_large", "http.maxBodyBytes");
}

#[test]
fn a_response_with_both_framings_is_read_as_chunked_and_its_connection_retired() {
    const REPLY: &[u8] =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n\
              3\r\nabc\r\n0\r\n\r\n";
    fn reply(s: &mut TcpStream, _: &Stop) -> std::io::Result<bool> {
        s.write_all(REPLY)?;
        Ok(true)
    }
    let server = RawServer::start(reply, true);
    let run = run_against(&server);
    assert_bounded(&run);
    let request = &run.report["scenarios"]["s"]["requests"]["hostile"];
    assert_eq!(request["status"]["200"].as_u64(), Some(3), "{request}");
    // What crossed the wire, head and chunk framing too, as k6 counts it.
    let wire = 3 * REPLY.len() as u64;
    assert_eq!(request["bytes_received"].as_u64(), Some(wire), "{request}");
    assert_eq!(server.requests(), 3);
    assert_eq!(
        server.connections(),
        3,
        "a connection that offered both framings is never reused"
    );
}

#[test]
fn an_early_answer_to_a_large_post_ends_the_send_and_is_never_resent() {
    fn reply(s: &mut TcpStream, stop: &Stop) -> std::io::Result<bool> {
        s.write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\n\r\nbig!")?;
        // Reads nothing more, as a server that has refused the body does.
        hold_open(stop, Duration::from_secs(60))
    }
    let server = RawServer::start(reply, false);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("upload.js");
    std::fs::write(
        &script,
        format!(
            "import http from 'k6/http';
export const options = {{ vus: 1, iterations: 3 }};
const body = 'x'.repeat(8 * 1024 * 1024);
export default function () {{
  http.post('{}/upload', body, {{ timeout: '{TIMEOUT}' }});
}}
",
            server.url
        ),
    )
    .unwrap();
    let run = run_loadtest(&dir, &["run", "-q", script.to_str().unwrap()]);
    assert_bounded(&run);
    let statuses: u64 = run.report["scenarios"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, s)| s["requests"].as_object().into_iter().flatten())
        .map(|(_, r)| r["status"]["413"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(statuses, 3, "{}", run.report);
    assert!(errors(&run.report).is_empty(), "{}", run.report);
    assert_eq!(server.requests(), 3, "no POST was sent again");
}

/// Config of a run where `noisy` misbehaves in `mode` with 20 VUs while
/// `steady` keeps 100 arrivals a second for 4 s (400 in all).
fn beside_a_steady_rate(target: &Target, mode: &str) -> String {
    format!(
        "target: {}
plugins:
  hostile: {{ path: {} }}
  get: {{ path: {} }}
scenarios:
  noisy: {{ plugin: hostile, executor: constant-vus, vus: 20, duration: 4s, params: {{ mode: {mode}, burn_ms: 10 }} }}
  steady: {{ plugin: get, executor: constant-arrival-rate, rate: 100, duration: 4s, preAllocatedVUs: 5, maxVUs: 10 }}
",
        target.url,
        component("hostile").display(),
        component("single_get").display()
    )
}

/// The runs of [`steady_beside`] measure what one generator does with the
/// machine's cores, so they take turns instead of halving them.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `steady` beside 20 VUs misbehaving in `mode` and checks that the
/// steady arrival rate stayed whole: at most 2% of its 400 starts dropped.
fn steady_beside(mode: &str) -> RunResult {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, &beside_a_steady_rate(&target, mode));
    let run = run_loadtest(&dir, &["run", "-q", cfg.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let steady = &run.report["scenarios"]["steady"];
    let count = |k: &str| steady[k].as_u64().unwrap();
    let (done, dropped) = (count("iterations"), count("dropped_iterations"));
    assert_eq!(done + dropped, 400, "{steady}");
    assert!(dropped <= 8, "{mode}: {dropped} of 400 dropped: {steady}");
    assert_eq!(target.received(), done, "the {mode} VUs send nothing");
    run
}

/// Twenty VUs burning CPU get the generator's CPU the steady scenario
/// leaves, not the workers' every slice; the run still says that the
/// generator, not the target, was the bottleneck.
#[test]
fn a_scenario_burning_cpu_leaves_another_arrival_rate_whole_and_is_named() {
    let run = steady_beside("burn");
    let g = &run.report["generator"];
    assert!(g["saturated_seconds"].as_u64().unwrap() >= 1, "{g}");
    // The CPU it got depends on what else runs beside it; the lag does not.
    assert!(g["scheduling_lag_max_ms"].as_f64().unwrap() >= 10.0, "{g}");
    assert!(run.stdout.contains("generator saturated"), "{}", run.stdout);
    let noisy = &run.report["scenarios"]["noisy"];
    assert!(noisy["iterations"].as_u64().unwrap() > 400, "{noisy}");
}

/// VUs whose iterations fail at once yield between iterations, so they
/// cannot hold the workers from another scenario's arrival clock.
#[test]
fn a_scenario_failing_in_a_tight_loop_leaves_another_arrival_rate_whole() {
    let run = steady_beside("fast-fail");
    let noisy = &run.report["scenarios"]["noisy"];
    assert!(
        noisy["iterations_failed"].as_u64().unwrap() > 1000,
        "{noisy}"
    );
}
