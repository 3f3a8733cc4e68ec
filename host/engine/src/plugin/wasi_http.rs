//! `wasi:http/outgoing-handler` for guests whose language reaches HTTP
//! that way (JavaScript's `fetch` under componentize-js, Python's
//! `wasi:http` under componentize-py). Their requests go through the VU's
//! own pooled client, with bodies buffered as the `http` import buffers
//! them, and are recorded the same way, named `METHOD /path`.

use crate::client::{self, Client, Connections, Outgoing, RequestError};
use crate::metrics::{Event, Recorder, Sink};
use http_body_util::{BodyExt as _, Full};
use std::future::Future;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

type Finished = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Sent = Box<dyn Future<Output = Result<(http::Response<WasiBody>, Finished), Error>> + Send>;

/// One VU's `wasi:http` side: its own connections (a guest may have
/// several requests in flight, which the `http` import never does).
pub struct HttpHooks {
    conns: Arc<tokio::sync::Mutex<Connections>>,
    scenario: Arc<str>,
    sink: Sink,
}

impl HttpHooks {
    pub fn new(client: Client, scenario: Arc<str>, sink: Sink) -> HttpHooks {
        HttpHooks {
            conns: Arc::new(tokio::sync::Mutex::new(Connections::new(client))),
            scenario,
            sink,
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
        let (conns, scenario, sink) =
            (self.conns.clone(), self.scenario.clone(), self.sink.clone());
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
            let exchange = conns.lock().await.send(outgoing).await;
            let micros = exchange.elapsed.as_micros() as u64;
            let mut recorder = Recorder::new(scenario, sink);
            let incoming = match exchange.result {
                Ok(incoming) => incoming,
                Err(e) => {
                    if !matches!(e, RequestError::Invalid(_)) {
                        recorder.record(Event::Request {
                            name,
                            status: None,
                            error: Some(e.kind()),
                            micros,
                            bytes: 0,
                        });
                    }
                    return Err(error_code(e));
                }
            };
            recorder.record(Event::Request {
                name,
                status: Some(incoming.status),
                error: None,
                micros,
                bytes: incoming.body_len,
            });
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
    }
}
