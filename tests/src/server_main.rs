//! The server binary for end-to-end tests and benchmarks (see Cargo.toml).
fn main() -> std::process::ExitCode {
    fenlei_server::cli_main()
}
