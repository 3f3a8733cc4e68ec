//! The host side of the `scenario` world's imports (0.2; 0.1's are
//! translated in `host_v01`): what a VU can ask of the host. Everything a
//! guest does that costs time or touches the network comes through here
//! and is recorded, tagged with the VU's group and tags.

use super::bindings::v02::loadtest::scenario::{cookies, http, log, metrics, vu};
use super::held::Rest;
use crate::client::{self, Client, Exchange, Hop, Jar, Outgoing, RequestError, Session, Timings};
use crate::metrics::{Context, Event, Expected, LateEntry, Recorder};
use bytes::Bytes;
use http::HeldResponse;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmtime::component::Resource;

/// The test's data files, shared by every VU.
pub type Files = Arc<std::collections::BTreeMap<String, Arc<[u8]>>>;

/// One VU's state that outlives its instances: a trapped instance is
/// replaced, but the VU's id, iteration count and metric buffer carry on.
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
    /// What the scenario's `setup` returned.
    pub setup_data: Option<Arc<str>>,
    /// The scenario's log budget; unlimited when none.
    pub log_budget: Option<Arc<super::LogBudget>>,
    /// The group and tags every sample is taken in.
    ctx: Context,
    /// The statuses the script expects (k6's response callback).
    expected: Expected,
    /// Open groups, innermost last.
    groups: Vec<OpenGroup>,
    /// What each open `tags-push` replaced: its tags' earlier values.
    pushed_tags: Vec<Vec<(String, Option<String>)>>,
    /// Extra sessions for batches, kept so their connections are reused.
    batch: Vec<Session>,
    files: Files,
    rng: SmallRng,
    epoch: Instant,
    /// Set when an async import returns; the sandbox meter reads and clears it.
    pub(super) waited: bool,
    /// `wasi:http` requests, for guests that send them that way.
    pub(super) wasi_http: super::wasi_http::HttpHooks,
    /// Where a request cut off mid-flight is still counted.
    late_entry: LateEntry,
    /// Headers and bodies of `send-held` responses the guest has not dropped.
    pub(super) held: super::held::Held,
    /// Cookie jars the guest made (k6's `new http.CookieJar()`).
    jars: super::jars::Jars,
    /// Where `abort-test` asks for the whole test to end.
    pub abort: crate::workload::abort::TestAbort,
    /// Where `fail-test` marks the test failed.
    pub failed: crate::workload::abort::TestFail,
    /// What `vu.execution` reports beside the VU's own count.
    pub execution: Execution,
    /// The test's shared arrays (k6's `SharedArray`), one store per test.
    pub shared_arrays: super::SharedArrays,
}

/// Where a VU's iteration stands in the test (k6's `k6/execution`).
#[derive(Debug, Clone)]
pub struct Execution {
    /// The running iteration's number among its scenario's on this node.
    pub iteration_in_instance: u64,
    /// This node's share of the test: `index` of `count` (0 of 1 alone).
    pub share: (u32, u32),
    pub executor: &'static str,
    /// The run's live figures (`vu.progress`); none in setup and teardown.
    pub live: Option<Arc<dyn RunProgress>>,
}

impl Default for Execution {
    fn default() -> Self {
        Execution {
            iteration_in_instance: 0,
            share: (0, 1),
            executor: "",
            live: None,
        }
    }
}

/// What `vu.progress` reports, kept by the workload as the run goes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    pub vus_active: u32,
    pub vus_initialized: u32,
    pub iterations_completed: u64,
    pub iterations_interrupted: u64,
    pub test_run: Duration,
    /// When the VU's scenario began; none before.
    pub scenario_start: Option<SystemTime>,
    /// From 0 to 1.
    pub scenario_progress: f64,
}

/// The source of [`Progress`] for one scenario's VUs.
pub trait RunProgress: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Progress;
}

impl Execution {
    /// Numbers unique across the test: each node's interleave with the
    /// others' (the node's `index`, then every `count`-th).
    fn in_test(&self, n: u64) -> u64 {
        let (index, count) = self.share;
        n.saturating_mul(count.max(1).into())
            .saturating_add(index.into())
    }
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
            recorder.scenario(),
            recorder.sink(),
        );
        VuHost {
            wasi_http,
            late_entry: recorder.late_entry(),
            id,
            scenario,
            iteration: 0,
            recorder,
            scheduled: None,
            exec: String::new(),
            session: Session::new(client, jar),
            setup_data: None,
            log_budget: None,
            ctx: Context::default(),
            expected: Expected::default(),
            groups: Vec::new(),
            pushed_tags: Vec::new(),
            batch: Vec::new(),
            files,
            rng: SmallRng::from_os_rng(),
            epoch,
            waited: false,
            held: Default::default(),
            jars: Default::default(),
            abort: Default::default(),
            failed: Default::default(),
            execution: Default::default(),
            shared_arrays: Default::default(),
        }
    }

    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }

    /// At an iteration's start, for the VU's session and the sessions
    /// its batches and `wasi:http` use beside it.
    pub fn new_iteration(&mut self) {
        self.session.new_iteration();
        for sibling in &mut self.batch {
            sibling.close_if_per_iteration();
        }
        self.wasi_http.close_if_per_iteration();
    }

    /// Puts what follows in the group `name` (setup's and teardown's
    /// samples); if nothing is recorded in it, it leaves no trace.
    pub fn enter_quiet_group(&mut self, name: &str) {
        metrics::Host::group_start(self, name.to_owned());
        if let Some(g) = self.groups.last_mut() {
            g.quiet_unless_after = Some(self.recorder.recorded());
        }
    }

    /// Ends what an iteration left open (a guest that returned early or
    /// trapped): tags pushed for a sample, its groups, recording their
    /// durations, and a jar of its own in use.
    pub fn close_groups(&mut self) {
        self.jars.swap_into(&mut self.session.jar, None);
        while !self.pushed_tags.is_empty() {
            metrics::Host::tags_pop(self);
        }
        while !self.groups.is_empty() {
            metrics::Host::group_end(self);
        }
    }

    /// Records a sample taken in the VU's current group and tags.
    fn record_in_ctx(&mut self, event: impl FnOnce(Context) -> Event) {
        let e = event(self.ctx.clone());
        self.recorder.record(e);
    }

    fn set_ctx(&mut self, ctx: Context) {
        self.wasi_http.ctx = ctx.clone();
        self.ctx = ctx;
    }

    /// How late this iteration started (open models only), taken once:
    /// only the first request is charged with it.
    fn late(&mut self) -> Duration {
        self.scheduled
            .take()
            .map_or(Duration::ZERO, |s| s.elapsed())
    }

    /// Sends a guest's request on the VU's session, each hop recorded.
    async fn send_recorded(&mut self, req: http::Request) -> Exchange {
        let late = self.late();
        let prepared = self.prepare(req, late);
        let VuHost {
            session,
            recorder,
            late_entry,
            ..
        } = self;
        let ex = exchange(session, prepared, late_entry, |e| recorder.record(e)).await;
        self.waited = true;
        ex
    }

    fn prepare(&self, req: http::Request, late: Duration) -> Prepared {
        let name = req
            .name
            .unwrap_or_else(|| client::default_name(&req.method, &req.url));
        Prepared {
            name,
            max_redirects: req.max_redirects,
            ctx: self.ctx.with(req.tags),
            expected: self.expected.clone(),
            late,
            outgoing: Outgoing {
                method: req.method,
                url: req.url,
                headers: req.headers,
                body: req.body,
                timeout: req.timeout_ms.map(|ms| Duration::from_millis(ms.into())),
                keep_body: !req.discard_body,
                keep_headers: !req.discard_headers,
            },
        }
    }
}

struct OpenGroup {
    /// The path outside it.
    outer: String,
    started: Instant,
    /// For setup's and teardown's groups: the events recorded before
    /// it began, so one that recorded nothing leaves no row behind.
    quiet_unless_after: Option<u64>,
}

/// A guest's request made ready to send and record.
struct Prepared {
    outgoing: Outgoing,
    name: String,
    max_redirects: Option<u32>,
    ctx: Context,
    expected: Expected,
    late: Duration,
}

/// Sends a prepared request on `session`, handing each hop's event to `record`.
async fn exchange(
    session: &mut Session,
    p: Prepared,
    late_entry: &LateEntry,
    mut record: impl FnMut(Event),
) -> Exchange {
    let Prepared {
        outgoing,
        name,
        max_redirects,
        ctx,
        expected,
        late,
    } = p;
    let mut pending = InFlight::new(&outgoing.method, name, ctx, expected, late, late_entry);
    let exchange = session
        .send(outgoing, max_redirects, |hop| {
            record(hop_event(
                &mut pending.name,
                hop,
                late,
                &pending.ctx,
                &pending.expected,
            ))
        })
        .await;
    pending.landed();
    Exchange {
        elapsed: exchange.elapsed + late,
        result: exchange.result,
        sent: exchange.sent,
        received: exchange.received,
    }
}

/// A request on its way. If the iteration is cut off before its answer
/// (a stop, or gracefulStop running out) the request still counts, as one
/// that failed `interrupted`: the target saw it, so the report does too.
pub(super) struct InFlight<'a> {
    /// Taken when the first hop's event is recorded.
    pub(super) name: Option<String>,
    method: &'static str,
    pub(super) ctx: Context,
    pub(super) expected: Expected,
    late: Duration,
    started: Instant,
    late_entry: &'a LateEntry,
}

impl<'a> InFlight<'a> {
    /// Call just before the request is handed to the client.
    pub(super) fn new(
        method: &str,
        name: String,
        ctx: Context,
        expected: Expected,
        late: Duration,
        late_entry: &'a LateEntry,
    ) -> Self {
        InFlight {
            method: method_tag(method),
            name: Some(name),
            ctx,
            expected,
            late,
            started: Instant::now(),
            late_entry,
        }
    }

    /// It landed: whatever it recorded (a request that never left, an
    /// invalid one, records nothing) stands.
    pub(super) fn landed(mut self) {
        self.name = None;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else {
            return;
        };
        self.late_entry.record(Event::Request {
            name,
            method: self.method,
            status: None,
            error: Some("interrupted"),
            expected: self.expected.judge(None, Some("interrupted")),
            micros: (self.started.elapsed() + self.late).as_micros() as u64,
            bytes: 0,
            sent: 0,
            timings: [0; 6],
            ctx: self.ctx.clone(),
        });
    }
}

/// The event of one hop: the first under the request's name (its latency
/// counted from the schedule in open models), redirects under their own.
pub(super) fn hop_event(
    name: &mut Option<String>,
    hop: Hop<'_>,
    late: Duration,
    ctx: &Context,
    expected: &Expected,
) -> Event {
    let (name, late) = match hop.index {
        0 => (name.take().unwrap_or_default(), late),
        _ => (client::default_name(hop.method, hop.url), Duration::ZERO),
    };
    let t = hop.timings;
    let us = |d: Duration| d.as_micros().min(u32::MAX.into()) as u32;
    Event::Request {
        name,
        method: method_tag(hop.method),
        status: hop.status,
        error: hop.error,
        expected: expected.judge(hop.status, hop.error),
        micros: (hop.elapsed + late).as_micros() as u64,
        bytes: hop.bytes,
        sent: hop.sent,
        timings: [
            us(t.blocked + late),
            us(t.connecting),
            us(t.tls),
            us(t.sending),
            us(t.waiting),
            us(t.receiving),
        ],
        ctx: ctx.clone(),
    }
}

/// The method as a sample's `method` tag: the standard ones by name.
fn method_tag(m: &str) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    STANDARD
        .iter()
        .find(|s| s.eq_ignore_ascii_case(m))
        .copied()
        .unwrap_or("OTHER")
}

fn response_of(exchange: Exchange) -> Result<http::Response, http::Error> {
    let incoming = exchange.result.map_err(error_of)?;
    Ok(http::Response {
        status: incoming.status,
        timings: timings_of(&incoming.timings),
        headers: incoming.headers,
        body: incoming.body.to_vec(),
        duration_us: exchange.elapsed.as_micros() as u64,
        url: incoming.final_url.unwrap_or_default(),
        redirects: incoming.redirects,
    })
}

fn timings_of(t: &Timings) -> http::Timings {
    let us = |d: Duration| d.as_micros() as u64;
    http::Timings {
        blocked_us: us(t.blocked),
        connecting_us: us(t.connecting),
        tls_handshaking_us: us(t.tls),
        sending_us: us(t.sending),
        waiting_us: us(t.waiting),
        receiving_us: us(t.receiving),
        // The sum of the phases as the guest sees them, to the microsecond.
        duration_us: us(t.sending) + us(t.waiting) + us(t.receiving),
    }
}

fn error_of(e: RequestError) -> http::Error {
    match e {
        RequestError::Invalid(m) => http::Error::InvalidRequest(m),
        RequestError::Connect(m) => http::Error::Connect(m),
        RequestError::Timeout => http::Error::Timeout,
        RequestError::Transport(m) => http::Error::Transport(m),
        // The 0.2 world has no kind of its own for it; the report has.
        RequestError::Protocol(m) => http::Error::Transport(format!("protocol: {m}")),
        RequestError::BodyTooLarge(n) => http::Error::BodyTooLarge(n),
        RequestError::TooManyRedirects(n) => http::Error::TooManyRedirects(n),
        e @ RequestError::Blocked(_) => http::Error::Connect(e.to_string()),
    }
}

impl http::Host for VuHost {
    async fn send(&mut self, req: http::Request) -> Result<http::Response, http::Error> {
        response_of(self.send_recorded(req).await)
    }

    async fn send_held(
        &mut self,
        req: http::Request,
    ) -> wasmtime::Result<Result<http::ResponseHead, http::Error>> {
        let asked = req.url.clone();
        let ex = self.send_recorded(req).await;
        self.head_of(ex, &asked)
    }

    fn set_expected_statuses(&mut self, ranges: Option<Vec<(u16, u16)>>) {
        self.expected = Expected::new(ranges);
    }

    async fn batch(
        &mut self,
        reqs: Vec<http::Request>,
    ) -> Vec<Result<http::Response, http::Error>> {
        let late = self.late();
        let prepared = reqs.into_iter().map(|r| self.prepare(r, late)).collect();
        self.send_batch(prepared).await
    }

    async fn batch_judged(
        &mut self,
        reqs: Vec<(http::Request, http::Judged)>,
    ) -> Vec<Result<http::Response, http::Error>> {
        let prepared = self.prepare_judged(reqs);
        self.send_batch(prepared).await
    }

    async fn batch_held(
        &mut self,
        reqs: Vec<(http::Request, http::Judged)>,
    ) -> wasmtime::Result<Vec<Result<http::ResponseHead, http::Error>>> {
        let asked: Vec<String> = reqs.iter().map(|(r, _)| r.url.clone()).collect();
        let prepared = self.prepare_judged(reqs);
        let exchanges = self.exchange_batch(prepared).await;
        exchanges
            .into_iter()
            .zip(asked)
            .map(|(ex, asked)| match ex {
                Some(ex) => self.head_of(ex, &asked),
                None => Ok(Err(unsent())),
            })
            .collect()
    }
}

impl VuHost {
    /// A response's small parts for the guest, its headers and body kept
    /// here (`send-held`); `asked` is the URL the guest gave, the one it
    /// compares with.
    fn head_of(
        &mut self,
        ex: Exchange,
        asked: &str,
    ) -> wasmtime::Result<Result<http::ResponseHead, http::Error>> {
        let incoming = match ex.result {
            Ok(incoming) => incoming,
            Err(e) => return Ok(Err(error_of(e))),
        };
        // A copy of its own: the body is a slice of the connection's read
        // buffer, and holding the slice would hold the whole buffer.
        let rest = self.held.keep(Rest {
            headers: incoming.headers,
            body: Bytes::copy_from_slice(&incoming.body),
            peer: incoming.peer,
        })?;
        Ok(Ok(http::ResponseHead {
            status: incoming.status,
            duration_us: ex.elapsed.as_micros() as u64,
            url: incoming.final_url.filter(|u| u != asked),
            redirects: incoming.redirects,
            timings: timings_of(&incoming.timings),
            rest: Resource::new_own(rest),
        }))
    }

    /// Requests of a batch, each judged its own way.
    fn prepare_judged(&mut self, reqs: Vec<(http::Request, http::Judged)>) -> Vec<Prepared> {
        let late = self.late();
        reqs.into_iter()
            .map(|(r, judged)| {
                let mut p = self.prepare(r, late);
                match judged {
                    http::Judged::AsVu => {}
                    http::Judged::By(ranges) => p.expected = Expected::new(Some(ranges)),
                    http::Judged::NotJudged => p.expected = Expected::new(None),
                }
                p
            })
            .collect()
    }

    /// Sends prepared requests at once, in lanes per host (k6's
    /// `http.batch` limits); results in the requests' order.
    async fn send_batch(
        &mut self,
        prepared: Vec<Prepared>,
    ) -> Vec<Result<http::Response, http::Error>> {
        let exchanges = self.exchange_batch(prepared).await;
        exchanges
            .into_iter()
            .map(|ex| ex.map_or_else(|| Err(unsent()), response_of))
            .collect()
    }

    /// The exchanges of a batch, in the requests' order; none for one
    /// that was not sent.
    async fn exchange_batch(&mut self, prepared: Vec<Prepared>) -> Vec<Option<Exchange>> {
        let n = prepared.len();
        let prepared: Vec<_> = prepared.into_iter().map(Some).collect();
        let urls = prepared.iter().flatten().map(|p| p.outgoing.url.as_str());
        let lanes = super::batch::Lanes::new(self.session.client(), urls);
        while self.batch.len() < lanes.hosts.len() {
            self.batch.push(self.session.sibling());
        }
        // The jar may have changed since a sibling was made (`use-jar`).
        for sibling in &mut self.batch {
            sibling.jar = self.session.jar.clone();
        }
        let VuHost {
            batch,
            recorder,
            late_entry,
            ..
        } = self;
        let late_entry = &*late_entry;
        // Locks only so the future is Send: the lanes run in this one
        // task, and none is held across an await.
        let recorder = Mutex::new(recorder);
        let prepared = Mutex::new(prepared);
        let results = Mutex::new((0..n).map(|_| None).collect::<Vec<_>>());
        let work = batch.iter_mut().zip(&lanes.hosts).map(|(session, host)| {
            let (lanes, recorder, prepared, results) = (&lanes, &recorder, &prepared, &results);
            async move {
                while let Some(i) = lanes.next(host) {
                    let Some(p) = lock(prepared)[i].take() else {
                        continue;
                    };
                    let _permit = lanes.permits.acquire().await.ok();
                    let ex = exchange(session, p, late_entry, |e| lock(recorder).record(e)).await;
                    lock(results)[i] = Some(ex);
                }
            }
        });
        futures_util::future::join_all(work).await;
        self.waited = true;
        results.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

fn unsent() -> http::Error {
    http::Error::InvalidRequest("not sent".into())
}

impl http::HostHeldResponse for VuHost {
    fn headers(&mut self, rest: Resource<HeldResponse>) -> Vec<(String, String)> {
        let held = self.held.get(rest.rep());
        held.map(|r| r.headers.clone()).unwrap_or_default()
    }

    fn body(&mut self, rest: Resource<HeldResponse>) -> Vec<u8> {
        let held = self.held.get(rest.rep());
        held.map(|r| r.body.to_vec()).unwrap_or_default()
    }

    fn connection(&mut self, rest: Resource<HeldResponse>) -> http::ConnectionInfo {
        let peer = self.held.get(rest.rep()).and_then(|r| r.peer);
        connection_of(peer)
    }

    fn drop(&mut self, rest: Resource<HeldResponse>) -> wasmtime::Result<()> {
        self.held.release(rest.rep());
        Ok(())
    }
}

/// k6's names for a connection: `HTTP/2.0` as Go's `Proto` gives it.
fn connection_of(peer: Option<crate::client::Peer>) -> http::ConnectionInfo {
    let Some(p) = peer else {
        return http::ConnectionInfo {
            proto: String::new(),
            remote_ip: String::new(),
            remote_port: 0,
            tls_version: None,
            tls_cipher_suite: None,
        };
    };
    http::ConnectionInfo {
        proto: if p.h2 { "HTTP/2.0" } else { "HTTP/1.1" }.to_owned(),
        remote_ip: p.addr.ip().to_string(),
        remote_port: p.addr.port(),
        tls_version: p.tls.map(|(v, _)| v.to_owned()),
        tls_cipher_suite: p.tls.map(|(_, s)| s.to_owned()),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl cookies::HostJar for VuHost {
    fn new(&mut self) -> wasmtime::Result<Resource<cookies::Jar>> {
        Ok(Resource::new_own(self.jars.make()?))
    }

    fn for_url(&mut self, jar: Resource<cookies::Jar>, url: String) -> Vec<(String, String)> {
        let (Some(jar), Ok(url)) = (self.jars.get(jar.rep()), self.session.absolute(&url)) else {
            return Vec::new();
        };
        jar.get(&url)
    }

    fn set(
        &mut self,
        jar: Resource<cookies::Jar>,
        url: String,
        set_cookie: String,
    ) -> Result<(), String> {
        let url = self.session.absolute(&url).map_err(|e| e.to_string())?;
        match self.jars.get(jar.rep()) {
            Some(jar) => jar.set(&url, &set_cookie),
            None => Err("this cookie jar was dropped".into()),
        }
    }

    fn clear(&mut self, jar: Resource<cookies::Jar>) {
        if let Some(jar) = self.jars.get(jar.rep()) {
            jar.clear();
        }
    }

    fn drop(&mut self, jar: Resource<cookies::Jar>) -> wasmtime::Result<()> {
        self.jars.release(jar.rep());
        Ok(())
    }
}

impl cookies::Host for VuHost {
    fn use_jar(&mut self, jar: Option<Resource<cookies::Jar>>) {
        let jar = jar.and_then(|j| self.jars.get(j.rep()).cloned());
        self.jars.swap_into(&mut self.session.jar, jar);
    }

    fn for_url(&mut self, url: String) -> Vec<(String, String)> {
        self.session.cookies_for(&url).unwrap_or_default()
    }

    fn set(&mut self, url: String, set_cookie: String) -> Result<(), String> {
        self.session.set_cookie(&url, &set_cookie)
    }

    fn clear(&mut self) {
        self.session.jar.clear();
    }
}

impl metrics::Host for VuHost {
    fn check(&mut self, name: String, passed: bool) {
        self.record_in_ctx(|ctx| Event::Check { name, passed, ctx });
    }

    fn counter_add(&mut self, name: String, value: f64) {
        self.record_in_ctx(|ctx| Event::Counter { name, value, ctx });
    }

    fn trend_add(&mut self, name: String, value: f64) {
        self.record_in_ctx(|ctx| Event::Trend { name, value, ctx });
    }

    fn gauge_set(&mut self, name: String, value: f64) {
        self.record_in_ctx(|ctx| Event::Gauge { name, value, ctx });
    }

    fn rate_add(&mut self, name: String, hit: bool) {
        self.record_in_ctx(|ctx| Event::Rate { name, hit, ctx });
    }

    fn group_start(&mut self, name: String) {
        let outer = self.ctx.group().to_owned();
        let group = format!("{outer}::{}", name.replace("::", ":"));
        self.groups.push(OpenGroup {
            outer,
            started: Instant::now(),
            quiet_unless_after: None,
        });
        let ctx = Context::new(&group, self.ctx.tags().to_vec());
        self.set_ctx(ctx);
    }

    fn group_end(&mut self) {
        let Some(open) = self.groups.pop() else {
            return;
        };
        let silent = open
            .quiet_unless_after
            .is_some_and(|n| self.recorder.recorded() == n);
        if !silent {
            let group = self.ctx.group().into();
            let micros = open.started.elapsed().as_micros() as u64;
            self.recorder.record(Event::Group { group, micros });
        }
        let ctx = Context::new(&open.outer, self.ctx.tags().to_vec());
        self.set_ctx(ctx);
    }

    fn tags_push(&mut self, tags: Vec<(String, String)>) {
        let mut all = self.ctx.tags().to_vec();
        let mut before = Vec::with_capacity(tags.len());
        for (k, v) in tags {
            before.push((k.clone(), self.ctx.tag(&k).map(str::to_owned)));
            all.retain(|(key, _)| *key != k);
            all.push((k, v));
        }
        self.pushed_tags.push(before);
        self.set_ctx(Context::new(self.ctx.group(), all));
    }

    fn tags_pop(&mut self) {
        let Some(before) = self.pushed_tags.pop() else {
            return;
        };
        let mut all = self.ctx.tags().to_vec();
        for (k, old) in before.into_iter().rev() {
            all.retain(|(key, _)| *key != k);
            all.extend(old.map(|v| (k, v)));
        }
        self.set_ctx(Context::new(self.ctx.group(), all));
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

    fn set_tag(&mut self, key: String, value: Option<String>) {
        let mut tags = self.ctx.tags().to_vec();
        tags.retain(|(k, _)| *k != key);
        if let Some(v) = value {
            tags.push((key, v));
        }
        let ctx = Context::new(self.ctx.group(), tags);
        self.set_ctx(ctx);
    }

    fn setup_data(&mut self) -> Option<String> {
        self.setup_data.as_deref().map(str::to_owned)
    }

    fn shared_array_len(&mut self, name: String) -> Option<u32> {
        self.shared_arrays.len(&name)
    }

    fn shared_array_put(&mut self, name: String, items: Vec<String>) -> Result<u32, String> {
        self.shared_arrays.put(&name, items)
    }

    fn shared_array_get(&mut self, name: String, index: u32) -> Option<String> {
        self.shared_arrays.get(&name, index)
    }

    fn abort_test(&mut self, reason: String) {
        let reason: String = reason.chars().take(500).collect();
        if self.abort.ask(reason.clone()) {
            tracing::debug!(scenario = %self.scenario, vu = self.id, "abort-test: {reason}");
        }
    }

    fn fail_test(&mut self, reason: String) {
        let reason: String = reason.chars().take(500).collect();
        if self.failed.mark(reason.clone()) {
            tracing::debug!(scenario = %self.scenario, vu = self.id, "fail-test: {reason}");
        }
    }

    fn progress(&mut self) -> vu::ProgressInfo {
        let p = self
            .execution
            .live
            .as_ref()
            .map(|l| l.now())
            .unwrap_or_default();
        let unix_ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        vu::ProgressInfo {
            vus_active: p.vus_active,
            vus_initialized: p.vus_initialized,
            iterations_completed: p.iterations_completed,
            iterations_interrupted: p.iterations_interrupted,
            test_run_ms: p.test_run.as_secs_f64() * 1000.0,
            scenario_start_ms: p.scenario_start.map_or(0, unix_ms) as u64,
            scenario_progress: p.scenario_progress,
        }
    }

    fn execution(&mut self) -> vu::ExecutionInfo {
        let e = &self.execution;
        // Ids count from 1 (0 is setup's and teardown's, and stays 0).
        let vu_id_in_test = match self.id {
            0 => 0,
            id => e.in_test(u64::from(id) - 1).saturating_add(1),
        };
        vu::ExecutionInfo {
            iteration_in_instance: e.iteration_in_instance,
            iteration_in_test: e.in_test(e.iteration_in_instance),
            vu_id_in_test: u32::try_from(vu_id_in_test).unwrap_or(u32::MAX),
            executor: e.executor.into(),
        }
    }
}

/// Whether a plugin's line at `level` would be written at all.
fn shown(level: log::Level) -> bool {
    match level {
        log::Level::Trace => tracing::enabled!(target: "plugin", tracing::Level::TRACE),
        log::Level::Debug => tracing::enabled!(target: "plugin", tracing::Level::DEBUG),
        log::Level::Info => tracing::enabled!(target: "plugin", tracing::Level::INFO),
        log::Level::Warn => tracing::enabled!(target: "plugin", tracing::Level::WARN),
        log::Level::Error => tracing::enabled!(target: "plugin", tracing::Level::ERROR),
    }
}

impl log::Host for VuHost {
    fn log(&mut self, level: log::Level, message: String) {
        // A line nobody will see spends none of the budget.
        if !shown(level) {
            return;
        }
        let (scenario, vu) = (&*self.scenario, self.id);
        match self.log_budget.as_deref().map(super::LogBudget::take) {
            Some(super::log_budget::Verdict::Drop) => return,
            Some(super::log_budget::Verdict::WriteAfterDropping(n)) => tracing::warn!(
                target: "plugin",
                scenario,
                "{n} log lines of this scenario were dropped in the last second (sandbox.logsPerSecond)"
            ),
            _ => {}
        }
        match level {
            log::Level::Trace => tracing::trace!(target: "plugin", scenario, vu, "{message}"),
            log::Level::Debug => tracing::debug!(target: "plugin", scenario, vu, "{message}"),
            log::Level::Info => tracing::info!(target: "plugin", scenario, vu, "{message}"),
            log::Level::Warn => tracing::warn!(target: "plugin", scenario, vu, "{message}"),
            log::Level::Error => tracing::error!(target: "plugin", scenario, vu, "{message}"),
        }
    }
}
