//! The `flowfuse` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

// mimalloc: the services allocate many small, short-lived objects per request (JSON, GraphQL
// values, rows); it serves them faster than glibc's malloc under concurrency (docs/benchmarks.md).
// With its `override` feature it also replaces `malloc` for the C code linked in: librdkafka
// allocates every header of every record it parses (eighteen per event), and in glibc's malloc
// that was a fifth of the projector's batch CPU. Version 2 (feature `v2`), not the crate's default
// 3: it served a few per cent more GraphQL requests in alternating runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = flowfuse::cli::Cli::parse();
    flowfuse::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(flowfuse::cli::run(cli))
}
