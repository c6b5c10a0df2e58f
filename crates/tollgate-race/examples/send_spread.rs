//! Send spread of 100 requests, `last-byte` vs `none` (and HTTP/2 `single-packet`), against
//! loopback servers started here on their own thread and single-threaded runtime (as a
//! separate server process would be); prints the median over trials for each mode and the
//! ratios none / last-byte and none / single-packet (PERFORMANCE.md).
//!
//! ```sh
//! cargo run --release -p tollgate-race --example send_spread -- 100 30
//! ```
//! Arguments: requests per trial (default 100), trials per mode (default 30), and optionally
//! the HTTP/1.1 and HTTP/2 (prior knowledge) servers to race instead of loopback ones.
//! `send_spread serve HTTP1_ADDR HTTP2_ADDR` only runs those servers, on the given addresses:
//! `scripts/netns-spread` runs it in one network namespace and the race in another.

use tollgate_testkit::http_servers as support;

use std::net::SocketAddr;

use tollgate_race::{RaceConfig, SyncMode, run};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let (http1, http2) = (args.get(1), args.get(2));
        let (Some(http1), Some(http2)) = (http1, http2) else {
            return Err("usage: send_spread serve HTTP1_ADDR HTTP2_ADDR".into());
        };
        serve(http1.parse()?, http2.parse()?).await;
        return Ok(());
    }
    let requests: usize = args.first().map_or(Ok(100), |a| a.parse())?;
    let trials: usize = args.get(1).map_or(Ok(30), |a| a.parse())?;
    let (http1, http2) = match (args.get(2), args.get(3)) {
        (Some(http1), Some(http2)) => (http1.parse()?, http2.parse()?),
        _ => server_thread()?,
    };
    let mut medians = Vec::new();
    for sync in [SyncMode::LastByte, SyncMode::None, SyncMode::SinglePacket] {
        let addr = if sync == SyncMode::SinglePacket {
            http2
        } else {
            http1
        };
        let mut config = RaceConfig::new(format!("http://{addr}/"));
        config.requests = requests;
        config.trials = trials;
        config.sync = sync;
        config.expectations = vec![format!("200={requests}").parse()?];
        let report = run(&config).await?;
        let s = report.send_spread_us;
        println!(
            "{sync:<13} {requests} requests x {trials} trials: send spread median {} us, max {} us \
             ({} of {} trials with every response 200)",
            s.median,
            s.max,
            report.trials - report.violations,
            report.trials
        );
        medians.push(s.median.max(1));
    }
    println!(
        "ratio none/last-byte: {:.1}x, none/single-packet: {:.0}x (medians)",
        medians[1] as f64 / medians[0] as f64,
        medians[1] as f64 / medians[2] as f64
    );
    Ok(())
}

/// Serves `200 ok` over HTTP/1.1 on `http1` and HTTP/2 (prior knowledge) on `http2`, forever.
async fn serve(http1: SocketAddr, http2: SocketAddr) {
    let _http1 = support::serve_on(http1, None, support::ok_app()).await;
    let _http2 = support::http2::serve_on(http2, support::ok_app(), false).await;
    println!("serving on {http1} (HTTP/1.1) and {http2} (HTTP/2)");
    std::future::pending::<()>().await;
}

fn server_thread() -> std::io::Result<(SocketAddr, SocketAddr)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async {
            let http1 = support::ok().await;
            let (http2, _) = support::http2::serve(support::ok_app(), false).await;
            let _ = tx.send((http1.addr, http2.addr));
            std::future::pending::<()>().await;
        });
    });
    rx.recv().map_err(std::io::Error::other)
}
