fn main() -> std::process::ExitCode {
    ladder::app::cli::main()
}
