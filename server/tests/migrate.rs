//! `paved migrate`: applies the database's migrations once and exits; run
//! again, it finds nothing to do. Only a SQLite URL is accepted.

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

    let postgres = migrate("postgres://db.internal/paved", &[]);
    assert_eq!(postgres.status.code(), Some(2));
    assert!(
        text(&postgres.stderr).contains("PAVED_DATABASE_URL: must be a SQLite URL"),
        "{}",
        text(&postgres.stderr)
    );

    let misused = migrate(&url, &["--all"]);
    assert_eq!(misused.status.code(), Some(2));
    assert!(text(&misused.stderr).starts_with("usage: paved migrate"));
}
