//! A throw-away 3-primary Redis Cluster on loopback: three `redis-server --cluster-enabled
//! yes` (each with a free client port and a free cluster-bus port), joined with `redis-cli`
//! (`CLUSTER ADDSLOTSRANGE`, `CLUSTER MEET`: what `redis-cli --cluster create` does, without
//! its fixed one-second waits), waited for until every node reports `cluster_state:ok`.

use std::net::{Ipv4Addr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tollgate_testkit::server::{RedisOptions, RedisServer};

/// Three primaries covering the 16,384 slots; dropping it kills them all.
#[derive(Debug)]
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

const SLOTS: usize = 16_384;

fn cli(port: u16, args: &[&str]) -> Vec<String> {
    let mut all = vec!["-p".to_owned(), port.to_string()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    all
}

fn redis_cli(args: &[String]) -> String {
    let out = Command::new("redis-cli")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run redis-cli ({e}): apt-get install redis-server (it ships redis-cli)")
        });
    assert!(
        out.status.success(),
        "redis-cli {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl RedisCluster {
    /// Starts and joins the cluster (blocking, bounded by deadlines).
    pub fn start() -> RedisCluster {
        let first_bus = free_port();
        let nodes: Vec<RedisServer> = (0..3)
            .map(|i| {
                let bus = if i == 0 { first_bus } else { free_port() };
                RedisOptions::new()
                    .setting("cluster-enabled", "yes")
                    .setting("cluster-port", bus.to_string())
                    .setting("cluster-node-timeout", "5000")
                    .start()
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        // What `redis-cli --cluster create` does, without its one-second waits: every node
        // meets the first, takes a third of the slots, and all agree on the map.
        let first = nodes[0].port();
        for (i, node) in nodes.iter().enumerate() {
            let (from, to) = (i * SLOTS / nodes.len(), (i + 1) * SLOTS / nodes.len() - 1);
            let mut args = cli(node.port(), &["cluster", "addslotsrange"]);
            args.extend([from.to_string(), to.to_string()]);
            redis_cli(&args);
            if i > 0 {
                let (port, bus) = (first.to_string(), first_bus.to_string());
                let meet = ["cluster", "meet", "127.0.0.1", &port, &bus];
                redis_cli(&cli(node.port(), &meet));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &nodes {
            let info = cli(node.port(), &["cluster", "info"]);
            loop {
                let text = redis_cli(&info);
                if text.contains("cluster_state:ok") && text.contains("cluster_known_nodes:3") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the cluster never became ok: {text}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        RedisCluster { nodes }
    }

    /// `redis://127.0.0.1:PORT` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// The cluster of this test binary, started by the first test that asks.
///
/// A new cluster's primaries refuse writes for two seconds after they start (Redis's
/// `CLUSTER_WRITABLE_DELAY`), too long to start one per test, so one cluster serves the
/// whole binary. A `static` is never dropped, so a watchdog process kills the servers and
/// removes their directories once this process is gone (also when it is killed).
pub fn shared_cluster() -> &'static RedisCluster {
    static SHARED: OnceLock<RedisCluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        let cluster = RedisCluster::start();
        cluster.watchdog();
        cluster
    })
}

impl RedisCluster {
    fn watchdog(&self) {
        let pids: Vec<String> = self
            .nodes
            .iter()
            .filter_map(RedisServer::pid)
            .map(|p| p.to_string())
            .collect();
        let dirs: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("'{}'", n.dir().display()))
            .collect();
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 0.2; done; kill -9 {pids} 2>/dev/null; rm -rf {dirs}",
            me = std::process::id(),
            pids = pids.join(" "),
            dirs = dirs.join(" "),
        );
        // Outlives this process on purpose: it is what cleans up after it.
        #[allow(clippy::zombie_processes)]
        let _watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    }
}
