//! The `dockroot` binary: everything is in the library ([`dockroot::command`]).

fn main() -> std::process::ExitCode {
    dockroot::command::main()
}
