//! `cargo run -p fenlei-uniffi-bindgen --bin uniffi-bindgen -- generate --library <cdylib> ...`
fn main() {
    uniffi::uniffi_bindgen_main()
}
