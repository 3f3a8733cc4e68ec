//! What a run tells its user: the summary table on stdout, the JSON
//! report, the per-second series, the HTML report and a Prometheus
//! endpoint. All are views of one [`Summary`] (and the series), so they
//! never disagree.

pub mod html;
mod json;
pub mod prometheus;
pub mod series;
mod table;

pub use json::{ClusterSummary, NodeSummary, RunFacts, Summary};
pub use table::render as render_table;
