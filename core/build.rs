// sqlx::migrate! embeds each migration file it finds, but cargo only learns
// of the files that existed when the crate was last built: a new migration
// must rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
