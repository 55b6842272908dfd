use clap::Parser;

fn main() -> std::process::ExitCode {
    handoffrail::install_crypto_provider();
    let cli = handoffrail::cli::Cli::parse();
    handoffrail::cli::run(cli)
}
