//! The `integ` binary; the command line lives in `integ::cli`.

/// mimalloc rather than the system's allocator: `integ serve` allocates for every request,
/// JSON value and log line, and glibc's malloc and free took a tenth of its CPU under load
/// (see ARCHITECTURE.md, "The hot path").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    integ::cli::main()
}
