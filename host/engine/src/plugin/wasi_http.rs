//! `wasi:http/outgoing-handler` for guests whose language reaches HTTP
//! that way (JavaScript's `fetch` under componentize-js, Python's
//! `wasi:http` under componentize-py). Their requests go through the VU's
//! own pooled client, with bodies buffered as the `http` import buffers
//! them, and are recorded the same way, named `METHOD /path`.

use super::host::{InFlight, hop_event};
use crate::client::{self, Outgoing, RequestError, Session};
use crate::metrics::{Context, Expected, Recorder, Sink};
use http_body_util::{BodyExt as _, Full};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

type Finished = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Sent = Box<dyn Future<Output = Result<(http::Response<WasiBody>, Finished), Error>> + Send>;

/// One VU's `wasi:http` side: its own connections (a guest may have
/// several requests in flight, which the `http` import never does).
pub struct HttpHooks {
    session: Arc<tokio::sync::Mutex<Session>>,
    scenario: Arc<str>,
    sink: Sink,
    /// The VU's group and tags, kept up to date by the VU.
    pub(super) ctx: Context,
}

impl HttpHooks {
    pub fn new(session: Session, scenario: Arc<str>, sink: Sink) -> HttpHooks {
        HttpHooks {
            session: Arc::new(tokio::sync::Mutex::new(session)),
            scenario,
            sink,
            ctx: Context::default(),
        }
    }

    /// With `http.noVUConnectionReuse`, at an iteration's start. A request
    /// still in flight (a guest that left one behind) keeps its session.
    pub fn close_if_per_iteration(&self) {
        if let Ok(mut session) = self.session.try_lock() {
            session.close_if_per_iteration();
        }
    }
}

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Finished,
    ) -> Sent {
        let (session, scenario, sink, ctx) = (
            self.session.clone(),
            self.scenario.clone(),
            self.sink.clone(),
            self.ctx.clone(),
        );
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let method = parts.method.as_str().to_owned();
            let url = parts.uri.to_string();
            let outgoing = Outgoing {
                method: method.clone(),
                headers: parts
                    .headers
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                    .collect(),
                body: (!body.is_empty()).then(|| body.to_vec()),
                timeout: options.and_then(|o| o.first_byte_timeout),
                keep_body: true,
                keep_headers: true,
                url,
            };
            let name = client::default_name(&method, &outgoing.url);
            let mut recorder = Recorder::new(scenario, sink);
            let late_entry = recorder.late_entry();
            let mut session = session.lock().await;
            // From here a cut-off (the guest's store dropped by a stop)
            // still counts the request, as the `http` import's do.
            // `wasi:http` guests have no way to set a response callback.
            let mut pending = InFlight::new(
                &method,
                name,
                ctx,
                Expected::default(),
                Duration::ZERO,
                &late_entry,
            );
            let exchange = session
                .send(outgoing, None, |hop| {
                    let event = hop_event(
                        &mut pending.name,
                        hop,
                        Duration::ZERO,
                        &pending.ctx,
                        &pending.expected,
                    );
                    recorder.record(event)
                })
                .await;
            pending.landed();
            let incoming = exchange.result.map_err(error_code)?;
            let mut response = http::Response::builder().status(incoming.status);
            for (k, v) in &incoming.headers {
                response = response.header(k, v);
            }
            let body = Full::new(incoming.body)
                .map_err(|never| match never {})
                .boxed_unsync();
            let response = response
                .body(body)
                .map_err(|e| Error::InternalError(Some(e.to_string())))?;
            Ok((response, Box::new(async { Ok(()) }) as Finished))
        })
    }
}

fn error_code(e: RequestError) -> Error {
    match e {
        RequestError::Invalid(_) => Error::HttpRequestUriInvalid,
        RequestError::Connect(_) => Error::ConnectionRefused,
        RequestError::Timeout => Error::ConnectionReadTimeout,
        RequestError::Transport(_) => Error::ConnectionTerminated,
        RequestError::Protocol(_) => Error::HttpProtocolError,
        RequestError::BodyTooLarge(max) => Error::HttpResponseBodySize(Some(max)),
        RequestError::TooManyRedirects(_) => {
            Error::InternalError(Some("too many redirects (http.maxRedirects)".into()))
        }
        RequestError::Blocked(_) => Error::DestinationIpProhibited,
    }
}
