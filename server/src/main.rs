fn main() -> std::process::ExitCode {
    fenlei_server::cli_main()
}
