//! The HTML report in a real browser: a real load run against a local server, rendered by
//! `obsctl::report::html::render`, loaded by headless Debian `chromium` through a logging
//! proxy. The charts must be in the DOM the browser built, with data; the page must make no
//! request beyond itself; a request name made of HTML must show as text. Skipped (with
//! `SKIPPED:`) without chromium, except under CI, where it fails. `obsctl report html` must
//! write the same page from the saved run report.

mod helpers;

use helpers::{Proxy, browser_service, chromium, dump_dom, load_run, spawn_target};
use obsctl::report::html::{escape, render};

/// A request name that is markup if it is not escaped (and would fetch `x` if it were).
const HOSTILE: &str = "</script><img src=x onerror=alert(1)>";

/// Two stages (a ramp, then a hold), two request names: one answered 200, one 503 against an
/// `expect` of 200, so that every chart has something to draw.
fn scenario() -> String {
    format!(
        r#"name = "html <report> & co"
start_rate = 40

[[stages]]
duration = "1s"
rate = 120

[[stages]]
duration = "2s"
rate = 120

[[requests]]
name = "get_item"
path = "/items/{{{{random:1..5}}}}"
weight = 3

[[requests]]
name = "{HOSTILE}"
path = "/status/503"
expect = [200]

[thresholds]
p99_ms = 1000
"#
    )
}

const CHARTS: [&str; 4] = [
    "chart-rate",
    "chart-latency",
    "chart-errors",
    "chart-spectrum",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_of_a_real_run_renders_its_charts_in_chromium_and_fetches_nothing() {
    let Some(chromium) = chromium() else {
        return;
    };
    let target = spawn_target().await;
    let report = load_run(&scenario(), &target.url).await;
    assert!(report.timeline.len() >= 3, "{:?}", report.timeline);
    assert!(report.by_name.iter().any(|n| n.name == HOSTILE));
    let page = render(&report);
    assert!(
        !page.contains(HOSTILE),
        "the hostile name is in the page as markup"
    );

    let proxy = Proxy::serve(page).await;
    let dom = dump_dom(&chromium, &proxy).await;

    for id in CHARTS {
        let svg = element(&dom, id);
        let lines: Vec<&str> = svg
            .split("<path class=\"series\" d=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap_or_default())
            .collect();
        assert!(!lines.is_empty(), "{id} has no line: {svg}");
        assert!(
            lines.iter().any(|d| d.starts_with('M') && d.contains('L')),
            "{id} has no line of two points or more: {lines:?}"
        );
    }
    // The stage boundary of the ramp is drawn.
    assert!(element(&dom, "chart-rate").contains(">stage 2</text>"));

    // The name is text: escaped in the serialized DOM, and no element came of it.
    assert!(dom.contains(&escape(HOSTILE)), "{dom}");
    assert!(!dom.contains("<img"), "an <img> element was created: {dom}");

    let requests = proxy.requests();
    let (own, page): (Vec<_>, Vec<_>) = requests.iter().partition(|r| browser_service(r));
    let page: Vec<&str> = page.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(
        page,
        [format!("GET {} HTTP/1.1", proxy.page_url)],
        "the page must be the only request besides the browser's own services ({own:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_html_writes_the_page_of_a_saved_run_next_to_it() {
    let target = spawn_target().await;
    let report = load_run(&scenario(), &target.url).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let run = dir.path().join("run.json");
    let json = report.to_json().expect("the report encodes");
    std::fs::write(&run, json).expect("the report is written");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_obsctl"));
    command
        .arg("report")
        .arg("html")
        .arg(&run)
        .kill_on_drop(true);
    let output = tokio::time::timeout(std::time::Duration::from_secs(20), command.output())
        .await
        .expect("obsctl ends within 20 s")
        .expect("obsctl starts");
    assert!(output.status.success(), "{output:?}");
    let page = std::fs::read_to_string(dir.path().join("run.html")).expect("run.html is written");
    assert_eq!(
        page,
        render(&report),
        "the page of the saved report is the run's page"
    );
}

/// The markup of the element with `id`, up to the end of its `<svg>`.
fn element<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id} in the DOM"));
    let rest = &dom[start..];
    let end = rest.find("</svg>").unwrap_or(rest.len());
    &rest[..end]
}
