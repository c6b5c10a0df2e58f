//! A fake database client for the keyed and S1 tests, included with `#[path]`.
#![allow(dead_code, unreachable_pub, unused_imports)]

#[path = "flight.rs"]
mod flight_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use flight_support::{Counter, Gate, poll_once, spawn_gated, spawn_registered};
use tollgate::keyed::{Resource, Resources};

/// A client that records whether it is healthy and whether it was closed.
#[derive(Debug)]
pub struct FakeClient {
    /// The key it was opened for.
    pub key: u32,
    healthy: AtomicBool,
    /// When set, health checks wait for this gate first.
    health_gate: Option<Gate>,
    closed: AtomicBool,
    closes: Counter,
}

impl FakeClient {
    /// Makes the next health check fail.
    pub fn break_it(&self) {
        self.healthy.store(false, Ordering::SeqCst);
    }

    /// Whether `close` ran.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Resource for FakeClient {
    async fn is_healthy(&self) -> bool {
        if let Some(gate) = &self.health_gate {
            gate.wait().await;
        }
        self.healthy.load(Ordering::SeqCst)
    }

    async fn close(&self) {
        // Counted first, so a second close shows in the exact close counts the tests assert.
        self.closes.hit();
        self.closed.store(true, Ordering::SeqCst);
    }
}

/// Opens and closes of every client a factory made.
#[derive(Clone, Debug, Default)]
pub struct Server {
    /// Connections opened.
    pub opens: Counter,
    /// Connections closed.
    pub closes: Counter,
    /// What slow creations wait for.
    pub gate: Gate,
    /// Opened by the first creation that waits on the gate.
    pub waiting: Gate,
    /// Keys whose creation waits for `gate`.
    pub slow: Arc<Vec<u32>>,
    /// Keys whose creation fails (after the gate, if slow).
    pub failing: Arc<Vec<u32>>,
    /// Health checks of the clients made wait for this gate, when set.
    pub health_gate: Option<Gate>,
}

impl Server {
    /// A factory connecting to this server.
    pub fn factory(
        &self,
    ) -> impl Fn(&u32) -> std::pin::Pin<Box<dyn Future<Output = Result<FakeClient, String>> + Send>>
    + Send
    + Sync
    + 'static
    + use<> {
        let server = self.clone();
        move |key: &u32| {
            let (server, key) = (server.clone(), *key);
            Box::pin(async move { server.connect(key).await })
        }
    }

    async fn connect(&self, key: u32) -> Result<FakeClient, String> {
        self.opens.hit();
        if self.slow.contains(&key) {
            self.waiting.open();
            self.gate.wait().await;
        }
        if self.failing.contains(&key) {
            return Err(format!("connection refused for {key}"));
        }
        Ok(FakeClient {
            key,
            healthy: AtomicBool::new(true),
            health_gate: self.health_gate.clone(),
            closed: AtomicBool::new(false),
            closes: self.closes.clone(),
        })
    }
}

/// The manager type the tests use.
pub type Clients<F> = Resources<u32, F>;
