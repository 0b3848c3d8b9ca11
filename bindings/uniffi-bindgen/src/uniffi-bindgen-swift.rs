//! Swift sources, headers and an XCFramework modulemap for all crates in the library at once.
fn main() {
    uniffi::uniffi_bindgen_swift()
}
