//! `--dashboard ADDR`: a page served by the binary that shows the run as
//! it goes and the final report when it ends.
//!
//! The server renders the charts and tables with the HTML report's own
//! code ([`crate::html::body`]) once a second; the page only swaps them
//! in. So there is no charting script to ship or keep in step with the
//! report, nothing is fetched from elsewhere, and what the page shows at
//! the end is byte for byte the `--html` report.

use crate::httpd::{Asked, Reply};
use crate::{ClusterSummary, RunFacts, Summary};
use loadtest_engine::config::Config;
use loadtest_engine::metrics::Row;
use loadtest_engine::workload::{Change, Live, Stop};
use serde::Serialize;
use std::fmt::Write;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const PAGE: &str = include_str!("dashboard.html");

/// How recently a page must have asked for it to be waited for at the
/// end: one that polls every second and asked within this is open.
const WATCHED: Duration = Duration::from_secs(3);
/// The longest the end of a run waits for an open page to take the
/// final report.
const HANDOVER: Duration = Duration::from_secs(5);

/// The dashboard of one run; dropping it stops the server.
pub struct Dashboard {
    board: Arc<Board>,
    server: tokio::task::JoinHandle<()>,
    pub url: String,
}

/// Carries a live change out elsewhere (a cluster run's leader) and says
/// what it did, or why not.
pub type Remote = Arc<
    dyn Fn(Change) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync,
>;

struct Board {
    live: Live,
    /// Where live changes go when this process does not run the load.
    remote: Option<Remote>,
    /// A cluster run's nodes, events and live changes, as last seen.
    cluster: Mutex<Option<(ClusterSummary, Vec<String>)>>,
    name: String,
    config: Config,
    /// The final report once the run has ended.
    done: Mutex<Option<Final>>,
    last_poll: Mutex<Option<Instant>>,
    handed_over: AtomicBool,
    handed: tokio::sync::Notify,
}

struct Final {
    body: String,
    report: String,
    secs: f64,
}

/// What the page gets every second.
#[derive(Serialize)]
struct State<'a> {
    done: bool,
    /// Whether the run takes live changes (the page shows its controls).
    control: bool,
    /// The line of live figures above the charts.
    status: String,
    /// The report's content so far (or, when done, the final one).
    body: &'a str,
    /// The whole report as a document, to save (only when done).
    report: Option<&'a str>,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Binds `addr` and serves the dashboard of the run `live` measures.
pub async fn bind(
    addr: SocketAddr,
    live: Live,
    name: &str,
    config: &Config,
) -> anyhow::Result<Dashboard> {
    bind_with(addr, live, name, config, None).await
}

/// Like [`bind`], for a run whose load runs elsewhere: `live` mirrors it
/// and `remote` carries live changes to it.
pub async fn bind_with(
    addr: SocketAddr,
    live: Live,
    name: &str,
    config: &Config,
    remote: Option<Remote>,
) -> anyhow::Result<Dashboard> {
    let board = Arc::new(Board {
        live,
        remote,
        cluster: Mutex::new(None),
        name: name.to_string(),
        config: config.clone(),
        done: Mutex::new(None),
        last_poll: Mutex::new(None),
        handed_over: AtomicBool::new(false),
        handed: tokio::sync::Notify::new(),
    });
    let b = board.clone();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--dashboard {addr}: cannot listen: {e}"))?;
    let url = format!("http://{}/", listener.local_addr()?);
    let server = crate::httpd::serve_on(listener, move |asked| b.answer(asked));
    Ok(Dashboard { board, server, url })
}

impl Dashboard {
    /// A cluster run's nodes, events and live changes as they are now.
    pub fn show_cluster(&self, cluster: ClusterSummary, controls: Vec<String>) {
        *lock(&self.board.cluster) = Some((cluster, controls));
    }

    /// The run has ended: from now on the page shows its report.
    pub fn finish(&self, summary: &Summary, rows: &[Row]) {
        *lock(&self.board.done) = Some(Final {
            body: crate::html::body(summary, rows),
            report: crate::html::render(summary, rows),
            secs: summary.duration_secs,
        });
    }

    /// Keeps serving after the run: until a page that was open has taken
    /// the final report (a few seconds at most), then for `linger` more
    /// or until the next Ctrl-C, whichever comes first.
    pub async fn linger(&self, linger: Duration, mut stop: watch::Receiver<Stop>) {
        let watched = lock(&self.board.last_poll).is_some_and(|t| t.elapsed() < WATCHED);
        if watched && !self.board.handed_over.load(Ordering::SeqCst) {
            let handed = self.board.handed.notified();
            let _ = tokio::time::timeout(HANDOVER, handed).await;
        }
        if linger.is_zero() || *stop.borrow() == Stop::Now {
            return;
        }
        eprintln!(
            "dashboard: the report stays at {} for {} s (Ctrl-C to end)",
            self.url,
            linger.as_secs()
        );
        stop.borrow_and_update();
        let _ = tokio::time::timeout(linger, stop.changed()).await;
    }
}

impl Board {
    fn answer(&self, asked: &Asked) -> Reply {
        match (asked.method, asked.path) {
            (&hyper::Method::GET, "/") => {
                Reply::Found("text/html; charset=utf-8", page(&self.name))
            }
            (&hyper::Method::GET, "/api/state") => Reply::Found("application/json", self.state()),
            (&hyper::Method::POST, "/api/control") => self.steer(asked),
            _ => Reply::NotFound,
        }
    }

    fn steer(&self, asked: &Asked) -> Reply {
        if !asked.control {
            return Reply::Unauthorized(
                "a live change needs the x-loadtest-control header (the dashboard's buttons and `loadtest scale` send it)",
            );
        }
        if lock(&self.done).is_some() {
            return Reply::Refused("the run has ended".into());
        }
        let change = match crate::control::from_query(asked.query) {
            Ok(c) => c,
            Err(why) => return Reply::Refused(why),
        };
        if let Some(remote) = &self.remote {
            let sent = remote(change);
            return Reply::Later(Box::pin(async move { said(sent.await) }));
        }
        said(self.live.steering.apply(&change))
    }

    fn state(&self) -> Vec<u8> {
        *lock(&self.last_poll) = Some(Instant::now());
        let done = lock(&self.done);
        let json = match &*done {
            Some(f) => {
                let json = serde_json::to_vec(&State {
                    done: true,
                    control: false,
                    status: self.status(Some(f.secs)),
                    body: &f.body,
                    report: Some(&f.report),
                });
                self.handed_over.store(true, Ordering::SeqCst);
                self.handed.notify_waiters();
                json
            }
            None => {
                let body = self.live_body();
                serde_json::to_vec(&State {
                    done: false,
                    control: self.remote.is_some() || self.live.steering.steerable(),
                    status: self.status(None),
                    body: &body,
                    report: None,
                })
            }
        };
        json.unwrap_or_default()
    }

    /// The report as it would be if the run ended now.
    fn live_body(&self) -> String {
        let rows = lock(&self.live.sink).rows().to_vec();
        let mut summary = Summary::new(RunFacts {
            name: &self.name,
            config: &self.config,
            metrics: &self.live.cumulative(),
            elapsed: self.live.elapsed(),
            stopped_early: false,
            aborted_by_threshold: false,
        });
        summary.controls =
            crate::control::log_lines(&self.live.steering, *lock(&self.live.started));
        if let Some((cluster, controls)) = lock(&self.cluster).clone() {
            summary.cluster = Some(cluster);
            summary.controls = controls;
        }
        crate::html::body(&summary, &rows)
    }

    /// Elapsed of planned time and busy VUs per scenario, and the total
    /// requests so far (`id="requests"`, which tests read).
    fn status(&self, ended_after: Option<f64>) -> String {
        let m = self.live.cumulative();
        let secs = ended_after.unwrap_or_else(|| self.live.elapsed().as_secs_f64());
        let mut s = format!(
            "<span class=\"state\">{}</span> <b id=\"requests\">{}</b> requests · <b id=\"failed\">{}</b> failed · {:.0} s",
            if ended_after.is_some() {
                "finished"
            } else {
                "running"
            },
            m.total_requests(),
            m.total_failed(),
            secs
        );
        if let Some((cluster, _)) = &*lock(&self.cluster) {
            let running = cluster.nodes.iter().filter(|n| n.status == "running");
            let _ = write!(
                s,
                " · <b id=\"shares\">{}</b> of {} node share(s) running",
                running.count(),
                cluster.nodes.len()
            );
        }
        for (name, executor, active) in lock(&self.live.scenarios).iter() {
            let _ = write!(
                s,
                " · {}: VUs {}/{} of {:.0} s",
                esc(name),
                active.load(Ordering::Relaxed),
                executor.max_vus(),
                executor.max_duration().as_secs_f64()
            );
        }
        s
    }
}

/// The answer to a live change: what it did, or why not.
fn said(outcome: Result<String, String>) -> Reply {
    match outcome {
        Ok(said) => {
            eprintln!("\nlive change: {said}");
            Reply::Found(
                "text/plain; charset=utf-8",
                format!("{said}\n").into_bytes(),
            )
        }
        Err(why) => Reply::Refused(why),
    }
}

fn page(name: &str) -> Vec<u8> {
    PAGE.replace("{{CSS}}", crate::html::CSS)
        .replace("{{NAME}}", &esc(name))
        .into_bytes()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
