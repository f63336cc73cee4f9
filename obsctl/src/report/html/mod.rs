//! The HTML report of a run: one self-contained page (no script, font, stylesheet or image is
//! fetched, and a Content-Security-Policy forbids it), charts drawn as inline SVG by [`svg`].
//! `obsctl report html RUN.json` and `obsctl load --html FILE` write it. Pure: a report in,
//! markup out; every string taken from the report is escaped.

mod charts;
pub mod svg;
mod tables;

use super::RunReport;
use std::fmt::Write as _;

/// The page's stylesheet, inlined (light colours, about 1,100 px wide).
const STYLE: &str = include_str!("style.css");

/// Renders `report` as a self-contained HTML page.
pub fn render(report: &RunReport) -> String {
    let title = escape(&format!(
        "{} run {}: obsctl load report",
        report.scenario.name, report.run_id
    ));
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{title}</title><style>{STYLE}</style></head>\n\
         <body><main>"
    );
    out.push_str(&tables::header(report));
    let sections = [
        ("thresholds", "Thresholds", tables::thresholds(report)),
        ("rate", "Rate over time", charts::rate(report)),
        ("latency", "Latency over time", charts::latency(report)),
        ("errors", "Errors over time", charts::errors(report)),
        (
            "spectrum",
            "Latency percentile spectrum",
            charts::spectrum(report),
        ),
        ("mix", "Status and error mix", tables::mix(report)),
        ("by-name", "Per request name", tables::by_name(report)),
    ];
    for (id, heading, body) in sections {
        let _ = writeln!(
            out,
            "<section id=\"{id}\"><h2>{heading}</h2>{body}</section>"
        );
    }
    let _ = writeln!(
        out,
        "<footer>obsctl {} &middot; run report version {}</footer></main></body></html>",
        env!("CARGO_PKG_VERSION"),
        report.schema_version
    );
    out
}

/// A paragraph of explanation; `html` is markup (escape report strings before).
fn note(html: &str) -> String {
    format!("<p class=\"note\">{html}</p>")
}

pub use crate::markup::escape;

#[cfg(test)]
mod tests;
