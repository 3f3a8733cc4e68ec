//! Live changes as they travel: a query string on the dashboard's
//! `POST /api/control` (from its buttons and from `loadtest pause`,
//! `resume` and `scale`), and as lines in the report.

use crate::httpd::CONTROL_HEADER;
use loadtest_engine::workload::{Change, Steering};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The query that asks for `change`.
pub fn to_query(change: &Change) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    let scenario = match change {
        Change::Pause => {
            q.append_pair("action", "pause");
            None
        }
        Change::Resume => {
            q.append_pair("action", "resume");
            None
        }
        Change::Vus { scenario, vus } => {
            q.append_pair("action", "scale");
            q.append_pair("vus", &vus.to_string());
            scenario.as_deref()
        }
        Change::Rate { scenario, factor } => {
            q.append_pair("action", "rate");
            q.append_pair("factor", &factor.to_string());
            scenario.as_deref()
        }
    };
    if let Some(s) = scenario {
        q.append_pair("scenario", s);
    }
    q.finish()
}

/// The change a query asks for, or what is wrong with it.
pub fn from_query(query: &str) -> Result<Change, String> {
    let mut action = None;
    let (mut vus, mut factor, mut scenario) = (None, None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "action" => action = Some(v.into_owned()),
            "vus" => vus = Some(v.into_owned()),
            "factor" => factor = Some(v.into_owned()),
            "scenario" if !v.is_empty() => scenario = Some(v.into_owned()),
            _ => {}
        }
    }
    match action.as_deref() {
        Some("pause") => Ok(Change::Pause),
        Some("resume") => Ok(Change::Resume),
        Some("scale") => {
            let v = vus.ok_or("scale needs `vus`, a whole number of VUs")?;
            let vus = v
                .trim()
                .parse()
                .map_err(|_| format!("`{v}` is not a whole number of VUs"))?;
            Ok(Change::Vus { scenario, vus })
        }
        Some("rate") => {
            let f = factor.ok_or("rate needs `factor`, like 1.5 for half as much again")?;
            let factor = f
                .trim()
                .parse()
                .map_err(|_| format!("`{f}` is not a number"))?;
            Ok(Change::Rate { scenario, factor })
        }
        other => Err(format!(
            "unknown action {other:?}: use pause, resume, scale (with vus) or rate (with factor)"
        )),
    }
}

/// The changes carried out, as the report lists them.
pub fn log_lines(steering: &Steering, started: Option<Instant>) -> Vec<String> {
    steering
        .log()
        .into_iter()
        .map(|(at, said)| match started {
            Some(s) => format!(
                "at {:.1} s: {said}",
                at.saturating_duration_since(s).as_secs_f64()
            ),
            None => format!("before the start: {said}"),
        })
        .collect()
}

/// Sends `change` to the dashboard of a run at `addr`; returns what it
/// said, or an error a user can act on.
pub async fn send(addr: &str, change: &Change) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach a run's dashboard at {addr}: {e}; start the run with `--dashboard {addr}`"
        )
    })?;
    let request = format!(
        "POST /api/control?{} HTTP/1.1\r\nHost: {addr}\r\n{CONTROL_HEADER}: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        to_query(change)
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.take(64 * 1024).read_to_end(&mut answer),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the dashboard at {addr} did not answer within 10 s"))??;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split_whitespace().nth(1).unwrap_or("");
    let body = body.trim().to_string();
    match status {
        "200" => Ok(body),
        "" => anyhow::bail!("{addr} did not answer like a loadtest dashboard"),
        _ => anyhow::bail!("{body}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_goes_through_its_query_unchanged() {
        for change in [
            Change::Pause,
            Change::Resume,
            Change::Vus {
                scenario: Some("a b&c".into()),
                vus: 12,
            },
            Change::Rate {
                scenario: None,
                factor: 1.5,
            },
        ] {
            assert_eq!(from_query(&to_query(&change)), Ok(change));
        }
    }

    #[test]
    fn a_bad_query_says_what_is_wrong() {
        assert!(
            from_query("action=scale")
                .unwrap_err()
                .contains("needs `vus`")
        );
        assert!(
            from_query("action=scale&vus=-1")
                .unwrap_err()
                .contains("`-1`")
        );
        assert!(
            from_query("action=jump")
                .unwrap_err()
                .contains("unknown action")
        );
    }
}
