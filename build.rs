// The migrations are embedded by `sqlx::migrate!`; a new migration file must rebuild the binary
// (the build script sqlx's documentation gives for this).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
