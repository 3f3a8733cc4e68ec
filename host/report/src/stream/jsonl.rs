//! `--out json=FILE`: every point of every second as a JSON line,
//! `{"ts": ms, "metric": ..., "labels": {...}, "counter"|"gauge"|"histogram": ...}`,
//! appended as the run goes, so `tail -f` and `jq` can follow it.

use super::points::Point;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Starts the file empty (a failure is a config error, before the run).
pub fn create(path: &Path) -> anyhow::Result<()> {
    std::fs::File::create(path)
        .map(drop)
        .map_err(|e| anyhow::anyhow!("--out json={}: cannot write: {e}", path.display()))
}

pub fn append(path: &Path, batch: &[(i64, Vec<Point>)]) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().append(true).open(path)?;
    let mut out = std::io::BufWriter::new(file);
    for (ts, points) in batch {
        for p in points {
            let labels: BTreeMap<_, _> = p.labels.iter().cloned().collect();
            let line = json!({ "ts": ts, "metric": p.name, "labels": labels, "value": p.value });
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()
}
