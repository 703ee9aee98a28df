//! `paved migrate`: applies the database's migrations once and exits; run
//! again, it finds nothing to do. SQLite and PostgreSQL URLs are accepted;
//! on PostgreSQL several runs at once (a rolling upgrade) apply each
//! migration once.

use std::process::{Command, Output};

fn migrate(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paved"))
        .arg("migrate")
        .args(args)
        .env("PAVED_DATABASE_URL", url)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

#[test]
fn migrate_applies_every_migration_once_and_refuses_other_databases() {
    let dir = tempfile::tempdir().unwrap();
    // The folder does not exist yet: it is created, as the server does.
    let url = format!("sqlite://{}", dir.path().join("data/paved.db").display());
    let all = paved_core::db::MIGRATOR.iter().count();

    let first = migrate(&url, &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(
        text(&first.stdout),
        format!("paved migrate: applied {all} migrations ({all} in all)")
    );

    let again = migrate(&url, &[]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(
        text(&again.stdout),
        format!("paved migrate: the database is up to date ({all} migrations)")
    );

    let mysql = migrate("mysql://db.internal/paved", &[]);
    assert_eq!(mysql.status.code(), Some(2));
    assert!(
        text(&mysql.stderr).contains("PAVED_DATABASE_URL: must be a SQLite URL"),
        "{}",
        text(&mysql.stderr)
    );
    let unreachable = migrate("postgres://paved@127.0.0.1:9/paved", &[]);
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        text(&unreachable.stderr).contains("could not be migrated"),
        "{}",
        text(&unreachable.stderr)
    );

    let misused = migrate(&url, &["--all"]);
    assert_eq!(misused.status.code(), Some(2));
    assert!(text(&misused.stderr).starts_with("usage: paved migrate"));
}

/// Three `paved migrate` runs at once on a fresh PostgreSQL database, as
/// replicas of a rolling upgrade would: all succeed, each migration is
/// applied once, and a later run finds nothing to do.
#[tokio::test]
async fn migrate_on_postgres_applies_each_migration_once_when_run_at_once() {
    let Some(url) = paved_core::db::postgres_testing::fresh_database("migrate").await else {
        return;
    };
    let all = paved_core::db::POSTGRES_MIGRATOR.iter().count();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || migrate(&url, &[]))
        })
        .collect();
    let mut applied = 0;
    for run in runs {
        let out = run.join().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let said = text(&out.stdout);
        if said.starts_with("paved migrate: applied") {
            applied += 1;
        }
    }
    assert!(applied >= 1, "one run applied the migrations");
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let (rows, versions): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT version) FROM _sqlx_migrations WHERE success",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((rows, versions), (all as i64, all as i64));
    let again = migrate(&url, &[]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(
        text(&again.stdout),
        format!("paved migrate: the database is up to date ({all} migrations)")
    );
}
