//! What k6's `httpDebug` option prints (the config's `http.httpDebug`):
//! every exchange's request and response on stderr, heads only or with
//! their bodies, so a script's author sees what went over the wire
//! (cookies the jar added, redirects followed) without a proxy.

use super::{Incoming, Outgoing, RequestError};
use serde::Deserialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Given")]
pub enum HttpDebug {
    #[default]
    Off,
    /// Request and response heads (k6's `--http-debug`).
    Headers,
    /// Heads and bodies (`--http-debug=full`).
    Full,
}

/// As a config or k6's options give it: `true`, `"headers"`, `"full"`,
/// or off with `false` or `""`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Given {
    Flag(bool),
    Mode(String),
}

impl TryFrom<Given> for HttpDebug {
    type Error = String;

    fn try_from(g: Given) -> Result<Self, String> {
        match g {
            Given::Flag(false) => Ok(HttpDebug::Off),
            Given::Flag(true) => Ok(HttpDebug::Headers),
            Given::Mode(m) => match m.as_str() {
                "" => Ok(HttpDebug::Off),
                "headers" => Ok(HttpDebug::Headers),
                "full" => Ok(HttpDebug::Full),
                other => Err(format!(
                    "httpDebug `{other}` is not one of true, false, \"headers\", \"full\""
                )),
            },
        }
    }
}

impl HttpDebug {
    pub fn on(self) -> bool {
        self != HttpDebug::Off
    }

    /// Prints one exchange, request then response (or why there was
    /// none), as one write so VUs' dumps do not interleave.
    pub fn print(self, req: &Outgoing, result: &Result<Incoming, RequestError>) {
        let mut out = String::from("Request:\n");
        self.request(&mut out, req);
        match result {
            Ok(res) => {
                out.push_str("Response:\n");
                self.response(&mut out, res);
            }
            Err(e) => {
                let _ = writeln!(out, "Response: none ({e})\n");
            }
        }
        eprint!("{out}");
    }

    fn request(self, out: &mut String, req: &Outgoing) {
        let _ = writeln!(out, "{} {} HTTP/1.1", req.method, req.url);
        for (k, v) in &req.headers {
            let _ = writeln!(out, "{k}: {v}");
        }
        out.push('\n');
        if self == HttpDebug::Full
            && let Some(body) = &req.body
        {
            self.body(out, body, None);
        }
    }

    fn response(self, out: &mut String, res: &Incoming) {
        let proto = match res.peer {
            Some(p) if p.h2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        };
        let reason = http::StatusCode::from_u16(res.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let _ = writeln!(out, "{proto} {} {reason}", res.status);
        for (k, v) in &res.headers {
            let _ = writeln!(out, "{k}: {v}");
        }
        out.push('\n');
        if self == HttpDebug::Full {
            let encoding = res
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-encoding"))
                .map(|(_, v)| v.as_str());
            self.body(out, &res.body, encoding);
        }
    }

    /// A body as text, or its size when it is compressed on the wire.
    fn body(self, out: &mut String, body: &[u8], encoding: Option<&str>) {
        match encoding {
            Some(e) if !e.eq_ignore_ascii_case("identity") => {
                let _ = writeln!(out, "[{} bytes, {e}-encoded]\n", body.len());
            }
            _ => {
                out.push_str(&String::from_utf8_lossy(body));
                out.push_str("\n\n");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<HttpDebug, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn k6s_values_are_read_and_others_named() {
        assert_eq!(parse("true").unwrap(), HttpDebug::Headers);
        assert_eq!(parse("false").unwrap(), HttpDebug::Off);
        assert_eq!(parse("full").unwrap(), HttpDebug::Full);
        assert_eq!(parse("headers").unwrap(), HttpDebug::Headers);
        assert_eq!(parse("\"\"").unwrap(), HttpDebug::Off);
        assert!(parse("verbose").unwrap_err().contains("`verbose`"));
    }
}
