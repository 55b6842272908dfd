//! `handoffrail serve` (API and proxy) and `handoffrail proxy` (the proxy alone, same flags).

use crate::config::{LogFormat, ServeConfig};
use crate::server::{shutdown_signal, Listeners, Server};
use tracing_subscriber::EnvFilter;

pub async fn run(config: ServeConfig, listeners: Listeners) -> anyhow::Result<()> {
    init_logging(config.log_format);
    let server = Server::bind_listeners(config, listeners).await?;
    server.run(shutdown_signal()).await
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("HANDOFFRAIL_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
