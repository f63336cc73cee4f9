//! A standalone OTLP/gRPC trace receiver for benchmarks: `otlp_sink ADDR` listens until
//! SIGTERM / Ctrl-C, then prints how many export calls and spans arrived.

use std::net::SocketAddr;

use obsctl::sources::otlp::{OtlpOptions, OtlpReceiver};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4317".to_owned())
        .parse()?;
    // Keep only a few spans in memory: a benchmark sends millions.
    let receiver = OtlpReceiver::start_with(addr, OtlpOptions { max_spans: 10_000 }).await?;
    eprintln!("otlp_sink: listening on {}", receiver.endpoint());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    println!(
        "otlp_sink: {} export calls, {} spans kept, {} spans beyond the cap",
        receiver.export_requests(),
        receiver.span_count(),
        receiver.dropped_spans()
    );
    Ok(())
}
