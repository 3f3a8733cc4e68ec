//! `--out`: the run's metrics streamed while it goes, every second, into
//! Prometheus remote write, OpenTelemetry (OTLP/HTTP) or a JSON-lines
//! file. Several at once.
//!
//! Every output gets the same points: the run's cumulative state at the
//! end of each closed second (counters, gauges, latency histograms and
//! percentiles), which is what the receivers expect (Prometheus counters
//! and OTLP's cumulative temporality) and what makes the last value of a
//! counter equal the report's count. A receiver that is down costs the
//! run nothing: its seconds are kept (up to a bound) and sent when it
//! answers again.

mod jsonl;
mod otlp;
mod points;
mod post;
mod remote_write;

pub use points::{Point, Value};

use loadtest_engine::metrics::{Closed, Metrics};
use loadtest_engine::workload::Live;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where `--out` sends the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// Prometheus remote write 1.0 (snappy protobuf), to this URL.
    PrometheusRemoteWrite(String),
    /// OTLP/HTTP metrics (JSON encoding), to this URL.
    Otlp(String),
    /// One JSON object per point per second, to this file.
    Jsonl(PathBuf),
}

impl std::str::FromStr for Out {
    type Err = String;

    fn from_str(s: &str) -> Result<Out, String> {
        let (kind, to) = s.split_once('=').ok_or_else(|| usage(s))?;
        let url = |u: &str| -> Result<String, String> {
            if u.starts_with("http://") {
                Ok(u.to_string())
            } else {
                Err(format!(
                    "`{u}`: the receiver's URL must start with http:// (HTTPS receivers are not supported yet)"
                ))
            }
        };
        match kind {
            "prometheus" | "experimental-prometheus-rw" => Ok(Out::PrometheusRemoteWrite(url(to)?)),
            "otlp" | "opentelemetry" => Ok(Out::Otlp(url(to)?)),
            "json" | "jsonl" if !to.is_empty() => Ok(Out::Jsonl(PathBuf::from(to))),
            _ => Err(usage(s)),
        }
    }
}

fn usage(s: &str) -> String {
    format!(
        "`{s}` is not an output: use prometheus=http://HOST:9090/api/v1/write, \
         otlp=http://HOST:4318/v1/metrics or json=FILE"
    )
}

/// The most seconds kept for a receiver that does not answer; older ones
/// are dropped (and counted) so a dead receiver cannot grow the process.
const BACKLOG: usize = 300;

/// A running stream; [`Stream::finish`] sends the last seconds.
pub struct Stream {
    task: tokio::task::JoinHandle<Sinks>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// The outputs a config's `outputs:` names, after the command line's
/// (`cli`); one named in both is streamed once.
pub fn with_config(cli: &[Out], config: &[String]) -> anyhow::Result<Vec<Out>> {
    let mut outs = cli.to_vec();
    for (i, o) in config.iter().enumerate() {
        let out: Out = o
            .parse()
            .map_err(|e| anyhow::anyhow!("outputs[{i}]: {e}"))?;
        if !outs.contains(&out) {
            outs.push(out);
        }
    }
    Ok(outs)
}

/// Starts streaming `live` to `outs` (none: no task at all).
pub async fn start(outs: &[Out], live: Live) -> anyhow::Result<Option<Stream>> {
    start_at(outs, live, None).await
}

/// Like [`start`], with the wall-clock time (Unix ms) of the run's second
/// 0 given: a cluster run's, so that whoever streams it (the operator, or
/// a leader after a failover) stamps each second alike and a second sent
/// twice is the same sample.
pub async fn start_at(
    outs: &[Out],
    live: Live,
    epoch_ms: Option<i64>,
) -> anyhow::Result<Option<Stream>> {
    if outs.is_empty() {
        return Ok(None);
    }
    let mut sinks = Sinks::open(outs, &live)?;
    sinks.epoch_ms = epoch_ms;
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => sinks.flush(false).await,
                _ = &mut stopped => return sinks,
            }
        }
    });
    Ok(Some(Stream { task, stop }))
}

impl Stream {
    /// The run is over (its intervals all closed): sends what is left and
    /// says on stderr what could not be delivered.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        if let Ok(mut sinks) = self.task.await {
            sinks.flush(true).await;
        }
    }
}

/// What every output shares: the cumulative state the points are read
/// from, and each output's undelivered seconds.
struct Sinks {
    live: Live,
    total: Metrics,
    /// Wall-clock time of the run's second 0, once the clock started.
    epoch_ms: Option<i64>,
    sinks: Vec<Sink>,
    client: post::Client,
}

struct Sink {
    out: Out,
    /// (timestamp ms, points), oldest first.
    backlog: VecDeque<(i64, Vec<Point>)>,
    dropped: u64,
    failing_since: Option<std::time::Instant>,
}

impl Sinks {
    fn open(outs: &[Out], live: &Live) -> anyhow::Result<Sinks> {
        for out in outs {
            if let Out::Jsonl(p) = out {
                jsonl::create(p)?;
            }
        }
        live.sink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keep_closed();
        Ok(Sinks {
            live: live.clone(),
            total: Metrics::default(),
            epoch_ms: None,
            sinks: outs
                .iter()
                .map(|out| Sink {
                    out: out.clone(),
                    backlog: VecDeque::new(),
                    dropped: 0,
                    failing_since: None,
                })
                .collect(),
            client: post::Client::new(),
        })
    }

    /// Turns the seconds closed since the last call into points and sends
    /// every output its backlog. `last`: also close what is still open
    /// (the run is over) and report what was not delivered.
    async fn flush(&mut self, last: bool) {
        let closed = {
            let mut c = self.live.sink.lock().unwrap_or_else(|p| p.into_inner());
            if last {
                c.close_all();
            }
            c.take_closed()
        };
        let batch = self.points(closed);
        for sink in &mut self.sinks {
            sink.backlog.extend(batch.iter().cloned());
            while sink.backlog.len() > BACKLOG {
                sink.backlog.pop_front();
                sink.dropped += 1;
            }
            sink.send(&self.client, self.epoch_ms.unwrap_or_default())
                .await;
            if last {
                sink.say_what_was_lost();
            }
        }
    }

    fn points(&mut self, closed: Vec<Closed>) -> Vec<(i64, Vec<Point>)> {
        if closed.is_empty() {
            return Vec::new();
        }
        let epoch = *self.epoch_ms.get_or_insert_with(|| {
            // Intervals count from the collector's epoch.
            let ago = self
                .live
                .sink
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .epoch()
                .elapsed();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            now.saturating_sub(ago).as_millis() as i64
        });
        let vus: Vec<(String, u64)> = self
            .live
            .scenarios
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, _, a)| (n.to_string(), u64::from(a.load(Ordering::Relaxed))))
            .collect();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        closed
            .into_iter()
            .map(|c| {
                self.total.merge(&c.metrics);
                // The run's last second is closed before it is over; a
                // sample from the future would be invisible to queries
                // until then.
                let ts = (epoch + (c.idx as i64 + 1) * 1000).min(now_ms);
                (ts, points::of(&self.total, &vus))
            })
            .collect()
    }
}

impl Sink {
    async fn send(&mut self, client: &post::Client, epoch_ms: i64) {
        while !self.backlog.is_empty() {
            let n = self.backlog.len().min(60);
            let batch: Vec<_> = self.backlog.iter().take(n).cloned().collect();
            let sent = match &self.out {
                Out::PrometheusRemoteWrite(url) => {
                    client
                        .post(
                            url,
                            remote_write::CONTENT,
                            remote_write::encode(&batch),
                            remote_write::HEADERS,
                        )
                        .await
                }
                Out::Otlp(url) => {
                    client
                        .post(url, otlp::CONTENT, otlp::encode(epoch_ms, &batch), &[])
                        .await
                }
                Out::Jsonl(path) => {
                    jsonl::append(path, &batch).map_err(|e| post::Failed::Retry(e.to_string()))
                }
            };
            match sent {
                Ok(()) => {
                    self.backlog.drain(..n);
                    if self.failing_since.take().is_some() {
                        eprintln!("--out {}: delivering again", self.name());
                    }
                }
                Err(post::Failed::Refused(why)) => {
                    self.backlog.drain(..n);
                    self.dropped += n as u64;
                    eprintln!("--out {}: {why}; {n} second(s) dropped", self.name());
                }
                Err(post::Failed::Retry(why)) => {
                    if self.failing_since.is_none() {
                        eprintln!(
                            "--out {}: {why}; keeping up to {BACKLOG} s to send later",
                            self.name()
                        );
                        self.failing_since = Some(std::time::Instant::now());
                    }
                    return;
                }
            }
        }
    }

    fn say_what_was_lost(&self) {
        let lost = self.dropped + self.backlog.len() as u64;
        if lost > 0 {
            eprintln!(
                "--out {}: {lost} second(s) of metrics were not delivered",
                self.name()
            );
        }
    }

    fn name(&self) -> String {
        match &self.out {
            Out::PrometheusRemoteWrite(u) => format!("prometheus={u}"),
            Out::Otlp(u) => format!("otlp={u}"),
            Out::Jsonl(p) => format!("json={}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse_from_the_command_line() {
        assert_eq!(
            "prometheus=http://127.0.0.1:9090/api/v1/write".parse(),
            Ok(Out::PrometheusRemoteWrite(
                "http://127.0.0.1:9090/api/v1/write".into()
            ))
        );
        assert_eq!("json=out.jsonl".parse(), Ok(Out::Jsonl("out.jsonl".into())));
        let err = "otlp=https://x".parse::<Out>().unwrap_err();
        assert!(err.contains("http://"), "{err}");
        let err = "statsd=x".parse::<Out>().unwrap_err();
        assert!(err.contains("not an output"), "{err}");
    }
}
