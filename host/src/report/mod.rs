//! What a run tells its user: the summary table on stdout and the JSON
//! report for machines. Both are views of one [`Summary`], so they never
//! disagree.

mod json;
mod table;

pub use json::Summary;
pub use table::render as render_table;
