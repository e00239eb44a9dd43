//! The `bangfu` binary: calls [`bangfu::cli::run`] and exits with its code.

fn main() -> std::process::ExitCode {
    bangfu::cli::run()
}
