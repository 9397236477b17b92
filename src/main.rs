//! The `turtlemen` binary: parses the command line and hands over to [`turtlemen::cli`].
//!
//! It allocates with mimalloc: serving many small requests on several threads, glibc's
//! malloc and free took about a sixth of the gateway's CPU time (`benches/gateway.sh`).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    turtlemen::cli::main()
}
