fn main() -> std::process::ExitCode {
    callback_guard_cli::main("callback-guard")
}
