//! The `turtlemen` binary: parses the command line and hands over to [`turtlemen::cli`].

fn main() -> std::process::ExitCode {
    turtlemen::cli::main()
}
