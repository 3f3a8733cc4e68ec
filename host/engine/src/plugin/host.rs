//! The host side of the `scenario` world's imports: what a VU can ask of
//! the host. Everything a guest does that costs time or touches the
//! network comes through here and is recorded.

use super::bindings::loadtest::scenario::{http, log, metrics, vu};
use crate::client::{self, Client, Hop, Jar, Outgoing, RequestError, Session};
use crate::metrics::{Event, Recorder};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One VU's state that outlives its instances: a trapped instance is
/// replaced, but the VU's id, iteration count and metric buffer carry on.
/// The test's data files, shared by every VU.
pub type Files = Arc<std::collections::BTreeMap<String, Arc<[u8]>>>;

pub struct VuHost {
    pub id: u32,
    pub scenario: Arc<str>,
    pub iteration: u64,
    pub recorder: Recorder,
    /// The intended start of this iteration in open models; the first
    /// request's latency is measured from it, so a late start shows.
    pub scheduled: Option<Instant>,
    /// The `exec` name picked for this iteration.
    pub exec: String,
    /// Connections and cookies, shared in part with `wasi_http`.
    pub session: Session,
    files: Files,
    rng: SmallRng,
    epoch: Instant,
    /// Set when an async import returns; the sandbox meter reads and clears it.
    pub(super) waited: bool,
    /// `wasi:http` requests, for guests that send them that way.
    pub(super) wasi_http: super::wasi_http::HttpHooks,
}

impl VuHost {
    pub fn new(
        id: u32,
        scenario: Arc<str>,
        client: Client,
        files: Files,
        recorder: Recorder,
        epoch: Instant,
    ) -> Self {
        let jar = Jar::default();
        let wasi_http = super::wasi_http::HttpHooks::new(
            Session::new(client.clone(), jar.clone()),
            scenario.clone(),
            recorder.sink(),
        );
        VuHost {
            wasi_http,
            id,
            scenario,
            iteration: 0,
            recorder,
            scheduled: None,
            exec: String::new(),
            session: Session::new(client, jar),
            files,
            rng: SmallRng::from_os_rng(),
            epoch,
            waited: false,
        }
    }
}

impl VuHost {
    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }
}

impl http::Host for VuHost {
    async fn send(&mut self, req: http::Request) -> Result<http::Response, http::Error> {
        let name = req
            .name
            .unwrap_or_else(|| client::default_name(&req.method, &req.url));
        let outgoing = Outgoing {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
            timeout: req.timeout_ms.map(|ms| Duration::from_millis(ms.into())),
            keep_body: !req.discard_body,
            keep_headers: !req.discard_headers,
        };
        // Only open models have a schedule to be late against.
        let sent = self.scheduled.take().map(|s| (s, Instant::now()));
        let late = sent.map_or(Duration::ZERO, |(s, sent)| {
            sent.saturating_duration_since(s)
        });
        let VuHost {
            session, recorder, ..
        } = self;
        let mut name = Some(name);
        let exchange = session
            .send(outgoing, None, |hop| {
                record_hop(recorder, &mut name, hop, late)
            })
            .await;
        self.waited = true;
        let micros = (exchange.elapsed + late).as_micros() as u64;
        match exchange.result {
            Ok(incoming) => Ok(http::Response {
                status: incoming.status,
                headers: incoming.headers,
                body: incoming.body.to_vec(),
                duration_us: micros,
            }),
            Err(e) => Err(match e {
                RequestError::Invalid(m) => http::Error::InvalidRequest(m),
                RequestError::Connect(m) => http::Error::Connect(m),
                RequestError::Timeout => http::Error::Timeout,
                RequestError::Transport(m) => http::Error::Transport(m),
                e @ (RequestError::BodyTooLarge(_) | RequestError::TooManyRedirects(_)) => {
                    http::Error::Transport(e.to_string())
                }
            }),
        }
    }
}

/// Records one hop: the first under the request's name (its latency
/// counted from the schedule in open models), redirects under their own.
pub(super) fn record_hop(
    recorder: &mut Recorder,
    name: &mut Option<String>,
    hop: Hop<'_>,
    late: Duration,
) {
    let (name, late) = match hop.index {
        0 => (name.take().unwrap_or_default(), late),
        _ => (client::default_name(hop.method, hop.url), Duration::ZERO),
    };
    recorder.record(Event::Request {
        name,
        status: hop.status,
        error: hop.error,
        micros: (hop.elapsed + late).as_micros() as u64,
        bytes: hop.bytes,
    });
}

impl metrics::Host for VuHost {
    fn check(&mut self, name: String, passed: bool) {
        self.recorder.record(Event::Check { name, passed });
    }

    fn counter_add(&mut self, name: String, value: f64) {
        self.recorder.record(Event::Counter { name, value });
    }

    fn trend_add(&mut self, name: String, value: f64) {
        self.recorder.record(Event::Trend { name, value });
    }
}

impl vu::Host for VuHost {
    fn id(&mut self) -> u32 {
        self.id
    }

    fn iteration(&mut self) -> u64 {
        self.iteration
    }

    fn scenario(&mut self) -> String {
        self.scenario.to_string()
    }

    fn exec(&mut self) -> String {
        self.exec.clone()
    }

    async fn sleep(&mut self, ms: u32) {
        tokio::time::sleep(Duration::from_millis(ms.into())).await;
        self.waited = true;
    }

    fn now_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn monotonic_us(&mut self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn file(&mut self, name: String) -> Option<Vec<u8>> {
        self.files.get(&name).map(|b| b.to_vec())
    }
}

impl log::Host for VuHost {
    fn log(&mut self, level: log::Level, message: String) {
        let (scenario, vu) = (&*self.scenario, self.id);
        match level {
            log::Level::Trace => tracing::trace!(target: "plugin", scenario, vu, "{message}"),
            log::Level::Debug => tracing::debug!(target: "plugin", scenario, vu, "{message}"),
            log::Level::Info => tracing::info!(target: "plugin", scenario, vu, "{message}"),
            log::Level::Warn => tracing::warn!(target: "plugin", scenario, vu, "{message}"),
            log::Level::Error => tracing::error!(target: "plugin", scenario, vu, "{message}"),
        }
    }
}
