//! The reference service's shared state. Its routes are in [`crate::routes`], the daily
//! reports of S3 in [`crate::reports`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tollgate::once::{OnCompleted, OnInProgress, Once};

use crate::db::Db;
use crate::llm::LlmClient;
use crate::store::ServiceStore;

/// The largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;
/// The longest accepted letter, in bytes.
pub const MAX_LETTER: usize = 16 * 1024;
/// The largest price or balance.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// The service's shared state; cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    inner: Arc<AppInner>,
}

#[derive(Debug)]
struct AppInner {
    db: Db,
    llm: LlmClient,
    once: Once<ServiceStore>,
    once_store: ServiceStore,
    naive: bool,
    save_faults: crate::questions::SaveFaults,
    chat: crate::chat::Chat,
}

impl App {
    /// The state of a service over `db`, keeping its exactly-once records in `once_store`
    /// (the database's own, or Redis), calling the LLM through `llm`; `naive` serves the
    /// `/naive/…` routes (demo mode only). Installs the Prometheus recorder (see
    /// [`prometheus`]) unless the process has one already.
    pub fn new(
        db: Db,
        once_store: ServiceStore,
        llm: LlmClient,
        naive: bool,
        chat: crate::chat::Chat,
        lease: Duration,
    ) -> App {
        let _ = prometheus();
        let once = Once::builder(once_store.clone())
            .on_in_progress(OnInProgress::Conflict)
            .on_completed(OnCompleted::Reject)
            .lease(lease, lease / 3)
            .build();
        App {
            inner: Arc::new(AppInner {
                db,
                llm,
                once,
                once_store,
                naive,
                save_faults: crate::questions::SaveFaults::default(),
                chat,
            }),
        }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The LLM client.
    pub fn llm(&self) -> &LlmClient {
        &self.inner.llm
    }

    /// Injected save failures of S4's interview questions (tests, demonstrations).
    pub fn save_faults(&self) -> &crate::questions::SaveFaults {
        &self.inner.save_faults
    }

    /// Whether the naive `/naive/…` routes are served (demo mode).
    pub fn naive(&self) -> bool {
        self.inner.naive
    }

    /// The exactly-once engine of the daily reports.
    pub fn once(&self) -> &Once<ServiceStore> {
        &self.inner.once
    }

    /// Where the exactly-once records live (daily reports, idempotent purchases).
    pub fn once_store(&self) -> &ServiceStore {
        &self.inner.once_store
    }

    /// The S0 chat: its plan and fake nodes.
    pub fn chat(&self) -> &crate::chat::Chat {
        &self.inner.chat
    }
}

/// The Prometheus recorder, installed as the process's `metrics` recorder on first use;
/// `None` when another recorder was installed first.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}
