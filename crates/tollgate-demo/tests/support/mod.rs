//! A throw-away fake LLM and service on free loopback ports, over a temporary SQLite file.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tempfile::TempDir;
use tollgate_demo::client::{Answer, HttpClient};
use tollgate_demo::llm::LlmSettings;
use tollgate_demo::{FakeLlm, FakeLlmConfig, Service, ServiceConfig};

pub struct Harness {
    pub llm: FakeLlm,
    pub service: Service,
    pub client: HttpClient,
    /// The throw-away PostgreSQL server, when the service runs on one.
    pub postgres: Option<tollgate_testkit::server::PostgresServer>,
    _dir: TempDir,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(
            FakeLlmConfig {
                latency: Duration::from_millis(100),
                failure_rate: 0.0,
            },
            LlmSettings::default(),
            false,
        )
        .await
    }

    pub async fn start_with(llm: FakeLlmConfig, settings: LlmSettings, naive: bool) -> Harness {
        Self::start_on(None, llm, settings, naive).await
    }

    /// The service on a throw-away PostgreSQL server (started here) instead of SQLite.
    pub async fn start_on_postgres(naive: bool) -> Harness {
        let server = tollgate_testkit::server::PostgresServer::start().unwrap();
        let llm = FakeLlmConfig {
            latency: Duration::from_millis(20),
            failure_rate: 0.0,
        };
        Self::start_on(Some(server), llm, LlmSettings::default(), naive).await
    }

    async fn start_on(
        postgres: Option<tollgate_testkit::server::PostgresServer>,
        llm: FakeLlmConfig,
        settings: LlmSettings,
        naive: bool,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let llm = FakeLlm::start(llm).await.unwrap();
        let database: tollgate_demo::Database = match &postgres {
            Some(server) => server.url().parse().unwrap(),
            None => dir.path().join("service.db").into(),
        };
        let mut config =
            ServiceConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), database, llm.url());
        config.llm = settings;
        config.naive = naive;
        let service = Service::start(config).await.unwrap();
        Harness {
            llm,
            service,
            client: HttpClient::new(),
            postgres,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.service.url())
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Answer {
        self.client.post_json(&self.url(path), &body).await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.client.get(&self.url(path)).await.unwrap()
    }

    pub async fn seed_letters(&self, user: &str, date: &str, count: usize) {
        for i in 0..count {
            let text = format!("letter {i} of {user} on {date}: a day like any other");
            let answer = self
                .post(
                    &format!("/users/{user}/letters"),
                    serde_json::json!({ "date": date, "text": text }),
                )
                .await;
            assert_eq!(answer.status, 201, "{:?}", answer.json());
        }
    }
}
