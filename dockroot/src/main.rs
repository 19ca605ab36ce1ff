fn main() -> std::process::ExitCode {
    dockroot::cli::run(|| 0)
}
