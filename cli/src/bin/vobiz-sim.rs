//! The command line's name until this release: the same commands as `callback-guard`.
//! Removed in the next release.

fn main() -> std::process::ExitCode {
    callback_guard_cli::main("vobiz-sim")
}
