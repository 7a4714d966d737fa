//! `pushbench`: the harness binary. Everything lives in the library so tests run it in-process.

/// The fleet's allocator. Thousands of client tasks allocate and free small
/// buffers per event (response chunks, decoded events); under glibc malloc
/// that churn (chunk consolidation) was a sizeable share of the fleet's CPU
/// in profiles, CPU the fleet then lacks for receiving events on time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    harness::cli::main()
}
