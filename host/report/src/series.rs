//! The per-second time series as JSON lines: one object per second,
//! easy to load into a notebook, a spreadsheet or `jq`.

use loadtest_engine::metrics::Row;
use std::io::Write;
use std::path::Path;

pub fn write_jsonl(path: &Path, rows: &[Row]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for row in rows {
        serde_json::to_writer(&mut out, row)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
