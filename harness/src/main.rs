//! `pushbench`: the harness binary. Everything lives in the library so tests run it in-process.

fn main() -> std::process::ExitCode {
    harness::cli::main()
}
