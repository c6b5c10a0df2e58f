//! The S3 scenario as a throw-away server to point `tollgate race` at:
//! `POST /reports/<key>` creates a report once (201) and rejects later attempts (409).
//!
//! ```sh
//! cargo run -p tollgate-race --example s3_server -- racy      # check, slow call, insert
//! cargo run -p tollgate-race --example s3_server -- racy 50   # the same, for `-n 50`
//! cargo run -p tollgate-race --example s3_server -- guarded   # atomic claim first
//! ```
//! It listens on 127.0.0.1 and prints the address it got.

use tollgate_testkit::http_servers as support;

#[tokio::main]
async fn main() {
    let server = match std::env::args().nth(1).as_deref() {
        // All racers of a path check before any inserts (20 unless given: `-n 20`).
        Some("racy") => {
            let racers = match std::env::args().nth(2) {
                None => 20,
                Some(n) => n.parse().unwrap_or_else(|_| {
                    eprintln!("usage: s3_server racy [racers]|guarded ({n:?} is not a count)");
                    std::process::exit(2);
                }),
            };
            support::racy(racers).await
        }
        Some("guarded") => support::guarded().await,
        _ => {
            eprintln!("usage: s3_server racy [racers]|guarded");
            std::process::exit(2);
        }
    };
    println!("listening on {}", server.url("/reports/"));
    std::future::pending::<()>().await;
}
