//! What a run tells its user: the summary table on stdout, the JSON
//! report, the per-second series, the HTML report and a Prometheus
//! endpoint. All are views of one [`Summary`] (and the series), so they
//! never disagree. Also the live progress on stderr, and the exit codes a run
//! ends with.

pub mod control;
pub mod dashboard;
pub mod exit;
pub mod html;
pub mod httpd;
mod json;
pub mod k6_data;
pub mod outputs;
pub mod progress;
pub mod prometheus;
pub mod series;
pub mod stream;
mod table;

pub use json::{ClusterSummary, NodeSummary, RunFacts, Summary};
pub use table::render as render_table;
