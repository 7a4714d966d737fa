//! TODO: being written.

/// Entry point of the `pushbench` binary.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
