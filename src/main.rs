fn main() -> std::process::ExitCode {
    handoffrail::install_crypto_provider();
    let cli = handoffrail::cli::parse();
    handoffrail::cli::run(cli)
}
