//! Send spread of 100 requests, `last-byte` vs `none`, against a loopback server started
//! here on its own thread and single-threaded runtime (as a separate server process would
//! be); prints the median over trials for each mode and their ratio (PERFORMANCE.md).
//!
//! ```sh
//! cargo run --release -p tollgate-race --example send_spread -- 100 30
//! ```
//! Arguments: requests per trial (default 100), trials per mode (default 30).

#[path = "../tests/support/mod.rs"]
mod support;

use tollgate_race::{RaceConfig, SyncMode, run};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let trials: usize = args.next().map_or(Ok(30), |a| a.parse())?;
    let addr = server_thread()?;
    let mut medians = Vec::new();
    for sync in [SyncMode::LastByte, SyncMode::None] {
        let mut config = RaceConfig::new(format!("http://{addr}/"));
        config.requests = requests;
        config.trials = trials;
        config.sync = sync;
        config.expectations = vec![format!("200={requests}").parse()?];
        let report = run(&config).await?;
        let s = report.send_spread_us;
        println!(
            "{sync:<9} {requests} requests x {trials} trials: send spread median {} us, max {} us \
             ({} of {} trials with every response 200)",
            s.median,
            s.max,
            report.trials - report.violations,
            report.trials
        );
        medians.push(s.median.max(1));
    }
    println!(
        "ratio none/last-byte (medians): {:.1}x",
        medians[1] as f64 / medians[0] as f64
    );
    Ok(())
}

fn server_thread() -> std::io::Result<std::net::SocketAddr> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async {
            let server = support::ok().await;
            let _ = tx.send(server.addr);
            std::future::pending::<()>().await;
        });
    });
    rx.recv().map_err(std::io::Error::other)
}
