//! Pure renderers: a [`CheckReport`](super::report::CheckReport) in, bytes out.

mod json;
mod junit;
mod text;

pub use json::json;
pub use junit::junit;
pub use text::text;

/// The output formats of `obsctl check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people (colour only on a terminal).
    Text,
    /// The report as JSON (schema: obsctl/schema/check-report.schema.json).
    Json,
    /// JUnit XML, for CI systems that show test results.
    Junit,
}
