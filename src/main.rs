//! The `integ` binary; the command line lives in `integ::cli`.

fn main() -> std::process::ExitCode {
    integ::cli::main()
}
