//! The `dockroot` binary: everything is in the library ([`dockroot::app`]).

fn main() -> std::process::ExitCode {
    dockroot::app::main()
}
