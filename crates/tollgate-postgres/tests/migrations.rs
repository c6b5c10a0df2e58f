//! Migrations: versioned, in a schema the user names, safe from many instances at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use tollgate_postgres::PostgresStore;
use tollgate_postgres::schema::{self, SchemaName};
use tollgate_postgres::tollgate::store::StoreErrorKind;
use tollgate_testkit::release_together;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_instances_starting_together_all_open_and_apply_each_migration_once() {
    let server = support::shared_server().await;
    let schema = support::fresh_schema();
    let opened = release_together(16, |_| {
        let schema = schema.clone();
        async move {
            PostgresStore::builder(support::pool(server, 1))
                .schema(schema)
                .timeout(support::TIMEOUT)
                .open()
                .await
        }
    })
    .await;
    let failures: Vec<_> = opened.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(failures.is_empty(), "{failures:?}");
    let client = support::pool(server, 1).get().await.unwrap();
    let versions = format!("SELECT version FROM {schema}.migrations ORDER BY version");
    let rows = client.query(&versions, &[]).await.unwrap();
    let applied: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(applied, (1..=schema::LATEST).collect::<Vec<_>>());
    let name = SchemaName::new(&schema).unwrap();
    assert_eq!(
        schema::applied(&**client, &name).await.unwrap(),
        schema::LATEST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_must_not_migrate_refuses_an_unmigrated_schema() {
    let server = support::shared_server().await;
    let schema = support::fresh_schema();
    let opened = PostgresStore::builder(support::pool(server, 1))
        .schema(&schema)
        .migrate(false)
        .open()
        .await;
    assert_eq!(opened.unwrap_err().kind(), StoreErrorKind::Rejected);
    PostgresStore::builder(support::pool(server, 1))
        .schema(&schema)
        .open()
        .await
        .unwrap();
    let checked = PostgresStore::builder(support::pool(server, 1))
        .schema(&schema)
        .migrate(false)
        .open()
        .await;
    assert!(checked.is_ok(), "{checked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_name_that_is_not_plain_is_rejected_before_any_sql() {
    let server = support::shared_server().await;
    let opened = PostgresStore::builder(support::pool(server, 1))
        .schema("x; DROP TABLE y")
        .open()
        .await;
    assert_eq!(opened.unwrap_err().kind(), StoreErrorKind::Rejected);
}
