//! A cluster nobody else can drive, with real node processes: mutual TLS
//! admits only what the cluster CA signed (and node calls only from node
//! certificates), an operator without credentials can do nothing, a node
//! beyond loopback will not start without credentials, a rogue peer in
//! Consul never receives the token, an oversize blob is refused before
//! it is buffered, and slow clients cannot hold the health port.

mod common;

use common::cluster::{Cluster, LIMIT, arrival, cli, serial, shared_config};
use common::consul::Consul;
use common::{BIN, Target, component, wait_bounded};
use loadtest_wire::rpc::pb;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `loadtest cluster certs` into `dir`.
fn certs(dir: &Path, nodes: &str) {
    let out = Command::new(BIN)
        .args(["cluster", "certs", "--out"])
        .arg(dir)
        .args(["--nodes", nodes, "--operators", "ops"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The TLS environment of the holder of `stem` in `dir`, trusting `ca`.
fn tls_env(ca: &Path, dir: &Path, stem: &str) -> Vec<(String, String)> {
    let p = |f: String| dir.join(f).display().to_string();
    vec![
        (
            "CLUSTER_TLS_CA".into(),
            ca.join("ca.pem").display().to_string(),
        ),
        ("CLUSTER_TLS_CERT".into(), p(format!("{stem}.pem"))),
        ("CLUSTER_TLS_KEY".into(), p(format!("{stem}.key"))),
    ]
}

fn client_tls(ca: &Path, dir: &Path, stem: &str) -> ClientTlsConfig {
    let read = |p: PathBuf| std::fs::read(p).unwrap();
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca.join("ca.pem"))))
        .identity(Identity::from_pem(
            read(dir.join(format!("{stem}.pem"))),
            read(dir.join(format!("{stem}.key"))),
        ))
        .domain_name("loadtest-node")
}

fn channel(addr: &str, tls: Option<ClientTlsConfig>) -> Channel {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut e = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5));
    if let Some(t) = tls {
        e = e.tls_config(t).unwrap();
    }
    e.connect_lazy()
}

fn payload(json: &str) -> pb::Payload {
    pb::Payload {
        json: json.as_bytes().to_vec(),
        format: loadtest_wire::FORMAT,
        data: Vec::new(),
    }
}

/// Every RPC a node serves, called with `token` (or none) over `ch`; the
/// outcome of each by name (Ok or the status code).
async fn every_rpc(
    addr: &str,
    tls: Option<ClientTlsConfig>,
    token: Option<&str>,
) -> Vec<(&'static str, tonic::Code)> {
    let ch = channel(addr, tls);
    let add = loadtest_wire::auth::AddToken::new(token).unwrap();
    let mut peer = pb::peer_client::PeerClient::new(ch.clone());
    let mut raft = pb::raft_client::RaftClient::with_interceptor(ch.clone(), add.clone());
    let mut co = pb::coordinator_client::CoordinatorClient::with_interceptor(ch, add);
    let code = |r: Result<(), tonic::Status>| r.map_or_else(|s| s.code(), |()| tonic::Code::Ok);
    let hello = pb::HelloRequest {
        format: loadtest_wire::FORMAT,
        ..Default::default()
    };
    let chunks = tokio_stream::iter(Vec::<pb::BlobChunk>::new());
    vec![
        ("hello", code(peer.hello(hello).await.map(drop))),
        ("vote", code(raft.vote(payload("{}")).await.map(drop))),
        (
            "append",
            code(raft.append_entries(payload("{}")).await.map(drop)),
        ),
        (
            "snapshot",
            code(raft.install_snapshot(payload("{}")).await.map(drop)),
        ),
        ("write", code(co.write(payload("{}")).await.map(drop))),
        (
            "missing",
            code(co.missing_blobs(payload("[]")).await.map(drop)),
        ),
        ("put", code(co.put_blobs(chunks).await.map(drop))),
        ("submit", code(co.submit(payload("{}")).await.map(drop))),
        ("prepare", code(co.prepare(payload("{}")).await.map(drop))),
        (
            "metrics",
            code(co.report_metrics(payload("{}")).await.map(drop)),
        ),
        ("status", code(co.status(payload("{}")).await.map(drop))),
    ]
}

/// What a call the node processed answers to the payloads above: a
/// result, or that `{}` is not the message it wants. Anything else (a
/// failed handshake, missing credentials) means it never got that far.
fn refused(c: tonic::Code) -> bool {
    !matches!(c, tonic::Code::Ok | tonic::Code::InvalidArgument)
}

fn start_tls_cluster(dir: &Path) -> Cluster {
    let ca = dir.join("pki");
    certs(&ca, "n1,n2,n3");
    let mut c = Cluster::new(3, None);
    for i in 0..3 {
        let env = tls_env(&ca, &ca, &format!("node-n{}", i + 1));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        c.start_with(i, &env);
    }
    c.await_agreement(LIMIT);
    c
}

#[test]
fn mutual_tls_admits_only_what_the_cluster_ca_signed_and_node_calls_only_from_nodes() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut c = start_tls_cluster(dir.path());
    let (ca, rogue) = (dir.path().join("pki"), dir.path().join("rogue"));
    certs(&rogue, "n1");
    let addr = c.nodes[0].raft.clone();
    let rt = runtime();

    let node = rt.block_on(every_rpc(
        &addr,
        Some(client_tls(&ca, &ca, "node-n2")),
        None,
    ));
    assert!(
        node.iter().all(|(_, c)| !refused(*c)),
        "a node is let in: {node:?}"
    );
    let plain = rt.block_on(every_rpc(&addr, None, None));
    assert!(plain.iter().all(|(_, c)| refused(*c)), "no TLS: {plain:?}");
    let foreign = rt.block_on(every_rpc(
        &addr,
        Some(client_tls(&ca, &rogue, "node-n1")),
        None,
    ));
    assert!(
        foreign.iter().all(|(_, c)| refused(*c)),
        "another CA's node: {foreign:?}"
    );
    let operator = rt.block_on(every_rpc(
        &addr,
        Some(client_tls(&ca, &ca, "operator-ops")),
        None,
    ));
    for (name, code) in &operator {
        let node_only = ["vote", "append", "snapshot", "prepare", "metrics"].contains(name);
        assert_eq!(
            *code == tonic::Code::PermissionDenied,
            node_only,
            "operator certificate, {name}: {operator:?}"
        );
    }

    // The operator's CLI over TLS runs a test, exactly counted.
    let target = Target::start();
    let cfg = shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &arrival(40, 1),
    );
    let mut cmd = Command::new(BIN);
    cmd.args([
        "submit",
        cfg.to_str().unwrap(),
        "--node",
        &c.peers,
        "--json",
    ])
    .arg(dir.path().join("r.json"))
    .envs(tls_env(&ca, &ca, "operator-ops"))
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let code = wait_bounded(&mut child, Duration::from_secs(90));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["totals"]["iterations"], 40);
    assert_eq!(
        target.received(),
        report["totals"]["requests"].as_u64().unwrap()
    );

    // Rotation: a new certificate from the same CA, and that node
    // restarted with it, rejoins the same cluster.
    let before = std::fs::read(ca.join("node-n1.pem")).unwrap();
    certs(&ca, "n1");
    assert_ne!(std::fs::read(ca.join("node-n1.pem")).unwrap(), before);
    c.kill(0);
    let env = tls_env(&ca, &ca, "node-n1");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    c.start_with(0, &env);
    c.await_agreement(LIMIT);
    let state = common::cluster::get_json(&c.nodes[0].health, "/health/cluster").unwrap();
    assert_eq!(state["peers"], 3, "{state}");

    // Without a certificate the CLI gets nowhere, and says what to set.
    let out = Command::new(BIN)
        .args(["status", "--node", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CLUSTER_TLS_CERT"), "{err}");
}

/// A raw HTTP GET with optional headers; the status line and the body.
fn http_get(addr: &str, path: &str, header: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{header}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

#[test]
fn without_the_token_an_operator_cannot_submit_stop_upload_or_read_the_state() {
    let _g = serial();
    let mut c = Cluster::new(3, Some("s3cret"));
    for i in 0..3 {
        c.start(i);
    }
    let (leader, _) = c.await_agreement(LIMIT);
    let addr = c.nodes[leader].raft.clone();
    let rt = runtime();
    let calls = rt.block_on(every_rpc(&addr, None, None));
    for (name, code) in &calls {
        let expected = if *name == "hello" {
            tonic::Code::Ok
        } else {
            tonic::Code::Unauthenticated
        };
        assert_eq!(*code, expected, "{name}: {calls:?}");
    }
    let with = rt.block_on(every_rpc(&addr, None, Some("s3cret")));
    assert!(with.iter().all(|(_, c)| !refused(*c)), "{with:?}");

    for args in [
        vec!["status", "--node", &addr],
        vec!["stop", "--node", &addr],
    ] {
        let (code, out) = cli(&args, None);
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(out.contains("requires a token"), "{args:?}: {out}");
    }

    let health = c.nodes[leader].health.clone();
    let denied = http_get(&health, "/cluster/state", "");
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    assert!(!denied.contains("voters"), "{denied}");
    let wrong = http_get(&health, "/cluster/state", "Authorization: Bearer guess\r\n");
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let shown = http_get(
        &health,
        "/cluster/state",
        "Authorization: Bearer s3cret\r\n",
    );
    assert!(
        shown.starts_with("HTTP/1.1 200") && shown.contains("\"voters\""),
        "{shown}"
    );
    let public = http_get(&health, "/health/cluster", "");
    let body: serde_json::Value =
        serde_json::from_str(public.split_once("\r\n\r\n").unwrap().1).unwrap();
    let mut fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "cluster_ready",
            "leader_id",
            "node_id",
            "peers",
            "state",
            "term"
        ],
        "exactly the public fields"
    );

    // Blobs: over the size limit refused when announced, and one never
    // announced refused at its first chunk, the stream still open.
    rt.block_on(async {
        let add = loadtest_wire::auth::AddToken::new(Some("s3cret")).unwrap();
        let mut co =
            pb::coordinator_client::CoordinatorClient::with_interceptor(channel(&addr, None), add);
        let big = format!(
            r#"[{{"digest":"{}","size":{}}}]"#,
            "a".repeat(64),
            300u64 << 20
        );
        let reply = co.missing_blobs(payload(&big)).await.unwrap().into_inner();
        let answer: Result<Vec<String>, String> = serde_json::from_slice(&reply.json).unwrap();
        assert!(answer.unwrap_err().contains("over this node's limit"));

        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(pb::BlobChunk {
            digest: "b".repeat(64),
            size: 200 << 20,
            data: vec![0; 1 << 20],
            format: loadtest_wire::FORMAT,
        })
        .await
        .unwrap();
        let sent = tokio::time::timeout(
            Duration::from_secs(5),
            co.put_blobs(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
        .await
        .expect("refused without waiting for the rest of the blob");
        let status = sent.unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
        assert!(status.message().contains("was not announced"), "{status:?}");
        drop(tx);
    });
}

#[test]
fn slow_clients_do_not_hold_the_health_port() {
    let _g = serial();
    let mut c = Cluster::new(1, None);
    c.start(0);
    c.await_agreement(LIMIT);
    let health = c.nodes[0].health.clone();
    let slow: Vec<std::net::TcpStream> = (0..20)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&health).unwrap();
            s.write_all(b"GET /health/cluster HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let ok = http_get(&health, "/health/cluster", "");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The server hangs up on each after its header timeout (5 s).
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 512];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(closed, "a slow client was still connected after 10s");
    }
    assert!(started.elapsed() < Duration::from_secs(12));
}

/// A namespace with one address on a dummy link, removed on drop.
struct Netns(String);

impl Netns {
    fn new(addr: &str) -> Netns {
        let name = format!("ltsec{}", std::process::id() % 100_000);
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("iproute2");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ip(&["netns", "add", &name]);
        let ns = Netns(name.clone());
        // A veth pair with one end inside: its address is not loopback.
        let (outside, inside) = (format!("{name}h"), format!("{name}n"));
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside, "netns", &name,
        ]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &inside,
        ]);
        ip(&["-n", &name, "link", "set", &inside, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the pair with it.
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn a_node_bound_beyond_loopback_without_credentials_refuses_to_start() {
    let addr = "10.215.7.1";
    let ns = Netns::new(addr);
    let dir = tempfile::tempdir().unwrap();
    let node = |extra: &[(&str, &str)]| {
        let log = dir.path().join(format!("{}.log", extra.len()));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.0, BIN, "node"])
            .env("CLUSTER_BIND_ADDR", format!("{addr}:7000"))
            .env("CLUSTER_HEALTH_ADDR", format!("{addr}:8080"))
            .env("CLUSTER_NODES", format!("{addr}:7000"))
            .env(
                "CLUSTER_DATA_DIR",
                dir.path().join(format!("d{}", extra.len())),
            )
            .env("NO_COLOR", "1")
            .env_remove("CLUSTER_TOKEN")
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        (cmd.spawn().unwrap(), log)
    };
    let (mut open, log) = node(&[]);
    assert_eq!(wait_bounded(&mut open, LIMIT), 1);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("has no authentication")
            && text.contains("CLUSTER_TOKEN")
            && text.contains("CLUSTER_INSECURE=true"),
        "{text}"
    );
    // With a token the same node starts and forms its one-node cluster.
    let (mut guarded, log) = node(&[("CLUSTER_TOKEN", "s3cret")]);
    common::cluster::await_true("the guarded node leads", || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("became leader")
    });
    let _ = guarded.kill();
    let _ = guarded.wait();
}

/// What a rogue gRPC endpoint saw: each request's path, and whether it
/// carried an `authorization` header.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// A rogue at a free port that relays hellos to a real node (so its
/// answers are a real node's) and records every request.
fn rogue(rt: &tokio::runtime::Runtime, real: String) -> (String, Seen) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let seen: Seen = Arc::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let record = seen.clone();
    rt.spawn(async move {
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http::<hyper::body::Incoming>();
        while let Ok((stream, _)) = listener.accept().await {
            let (client, record, real) = (client.clone(), record.clone(), real.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (client, record, real) = (client.clone(), record.clone(), real.clone());
                        async move {
                            let path = req.uri().path().to_owned();
                            record
                                .lock()
                                .unwrap()
                                .push((path.clone(), req.headers().contains_key("authorization")));
                            let (mut parts, body) = req.into_parts();
                            parts.uri = format!("http://{real}{path}").parse().unwrap();
                            client
                                .request(hyper::Request::from_parts(parts, body))
                                .await
                        }
                    },
                );
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[test]
fn a_rogue_peer_registered_in_consul_never_receives_the_token() {
    let _g = serial();
    let consul = Consul::start();
    let rt = runtime();
    let mut c = Cluster::new(3, Some("s3cret"));
    let (rogue_addr, seen) = rogue(&rt, c.nodes[0].raft.clone());
    let (host, port) = rogue_addr.rsplit_once(':').unwrap();
    let (ok, out) = consul.cli(
        &[
            "services",
            "register",
            "-name=loadtest-cluster",
            "-id=rogue",
            &format!("-address={host}"),
            &format!("-port={port}"),
        ],
        None,
    );
    assert!(ok, "{out}");
    let url = consul.url();
    for i in 0..3 {
        c.start_with(
            i,
            &[
                ("DISCOVERY_MODE", "consul"),
                ("CLUSTER_NODES", ""),
                ("CONSUL_ADDR", url.as_str()),
                ("CLUSTER_BOOTSTRAP_EXPECT", "3"),
            ],
        );
    }
    let (leader, _) = c.await_agreement(LIMIT);
    assert_eq!(c.write(leader, "k", "v", Some("s3cret")).0, 0);
    // Every node says hello to every peer each second: wait until the
    // rogue has been asked by all three a few times over.
    common::cluster::await_true("hellos at the rogue", || seen.lock().unwrap().len() >= 9);
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|(path, auth)| path == "/loadtest.cluster.v1.Peer/Hello" && !auth),
        "the rogue was sent more than hellos: {seen:?}"
    );
    let state: serde_json::Value = {
        let resp = http_get(
            &c.nodes[leader].health,
            "/cluster/state",
            "Authorization: Bearer s3cret\r\n",
        );
        serde_json::from_str(resp.split_once("\r\n\r\n").unwrap().1).unwrap()
    };
    let members = format!("{} {}", state["voters"], state["learners"]);
    assert!(!members.contains(&rogue_addr), "{members}");
    assert_eq!(state["voters"].as_array().unwrap().len(), 3, "{state}");
    let log = std::fs::read_to_string(&c.nodes[leader].log).unwrap();
    assert!(
        log.contains("without a valid proof of the cluster token"),
        "{log}"
    );
}

/// A peer holding the token that sends malformed, oversized and
/// nonsensical messages: every call fails cleanly, and the cluster keeps
/// its leader and still runs a test.
#[test]
fn a_hostile_peer_with_the_token_cannot_crash_or_split_the_cluster() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let token = "hostile-test-token";
    let mut c = Cluster::new(3, Some(token));
    for i in 0..3 {
        c.start(i);
    }
    let (leader, term) = c.await_agreement(LIMIT);
    let addr = c.nodes[leader].raft.clone();
    let rt = runtime();
    // Each call's outcome: a status code, or the JSON of what it answered.
    let outcomes: Vec<(&str, Result<String, tonic::Code>)> = rt.block_on(async {
        let ch = channel(&addr, None);
        let add = loadtest_wire::auth::AddToken::new(Some(token)).unwrap();
        let mut raft = pb::raft_client::RaftClient::with_interceptor(ch.clone(), add.clone())
            .max_encoding_message_size(usize::MAX);
        let mut co = pb::coordinator_client::CoordinatorClient::with_interceptor(ch, add)
            .max_encoding_message_size(usize::MAX);
        let code = |r: Result<tonic::Response<pb::Payload>, tonic::Status>| {
            r.map(|p| String::from_utf8_lossy(&p.get_ref().json).into_owned())
                .map_err(|s| s.code())
        };
        let huge = pb::Payload {
            json: vec![b'['; 80 << 20],
            format: loadtest_wire::FORMAT,
            data: Vec::new(),
        };
        let chunk = |digest: &str, size: u64, data: Vec<u8>| pb::BlobChunk {
            digest: digest.into(),
            size,
            data,
            format: loadtest_wire::FORMAT,
        };
        vec![
            ("append, 80 MiB", code(raft.append_entries(huge.clone()).await)),
            ("submit, 80 MiB", code(co.submit(huge).await)),
            ("append, not JSON", code(raft.append_entries(payload("\u{1}garbage")).await)),
            ("append, deep nesting", code(raft.append_entries(payload(&"[".repeat(100_000))).await)),
            ("vote, wrong shape", code(raft.vote(payload(r#"{"vote":"x","last_log_id":[1,2]}"#)).await)),
            ("snapshot, wrong shape", code(raft.install_snapshot(payload(r#"{"offset":-1,"data":"x"}"#)).await)),
            ("metrics, wrong run", code(co.report_metrics(payload(r#"{"run_id":"nope","assignment":4294967295,"intervals":[],"started_at_ms":null,"finished":null}"#)).await)),
            ("metrics, malformed interval", code(co.report_metrics(payload(r#"{"run_id":"x","assignment":0,"intervals":[{"idx":1,"vus":1,"metrics":{"scenarios":"no"}}]}"#)).await)),
            ("write, reserved key", code(co.write(payload(r#"{"Put":{"key":"plan","value":"{}"}}"#)).await)),
            ("blobs, unannounced", co.put_blobs(tokio_stream::iter(vec![chunk(&"0".repeat(64), 5, b"hello".to_vec())])).await.map(|_| "taken".into()).map_err(|s| s.code())),
            ("blobs, lying size", code(co.missing_blobs(payload(&format!(r#"[{{"digest":"{}","size":18446744073709551615}}]"#, "a".repeat(64)))).await)),
        ]
    });
    eprintln!("{outcomes:?}");
    for (what, outcome) in &outcomes {
        match outcome {
            // Processed, and refused inside the answer.
            Ok(json) => assert!(json.starts_with(r#"{"Err""#), "{what} was taken: {json}"),
            Err(code) => assert!(
                matches!(
                    code,
                    tonic::Code::InvalidArgument
                        | tonic::Code::OutOfRange
                        | tonic::Code::ResourceExhausted
                        | tonic::Code::FailedPrecondition
                ),
                "{what}: {code:?}"
            ),
        }
    }
    // Every node is up, the same leader leads in the same term, and a run
    // goes through it.
    assert_eq!(c.running().len(), 3);
    assert_eq!(c.await_agreement(LIMIT), (leader, term));
    let target = Target::start();
    let cfg = shared_config(
        dir.path(),
        &target,
        &component("quickstart"),
        &arrival(50, 2),
    );
    let (code, out) = cli(
        &["submit", &cfg.display().to_string(), "--node", &addr],
        Some(token),
    );
    assert_eq!(code, 0, "{out}");
    assert!(target.received() >= 200, "{out}");
}
