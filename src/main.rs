//! The `toxtemp` binary: parse the command line and hand over to the library.

use clap::Parser;

/// mimalloc returns freed memory to the system; glibc's allocator, with the many threads of
/// the server, the storage client and blocking tasks, kept hundreds of MiB resident after a
/// large submission (see README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = toxtemp::cli::Cli::parse();
    toxtemp::telemetry::init();
    match toxtemp::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
