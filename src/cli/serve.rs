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
        LogFormat::Pretty => builder.fmt_fields(escaped_fields()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Field formatting for text logs in which no value can write a control character: a tenant name holding a
/// newline or `ESC[2J` shows as `\n` / `\u{1b}[2J` instead of forging a line or clearing a terminal.
/// (JSON logs escape by themselves.)
fn escaped_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = escape_controls(&format!("{value:?}"));
        if field.name() == "message" {
            write!(writer, "{text}")
        } else {
            write!(writer, "{field}={text}")
        }
    })
    .delimited(" ")
}

fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn user_strings_cannot_forge_log_lines_or_drive_the_terminal() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .fmt_fields(escaped_fields())
            .finish();
        let name = "acme\n2026-11-28T00:00:00Z  INFO admin key created\u{1b}[2J";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(tenant = %name, other = name, "tenant {name} created");
        });
        let text =
            String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("utf-8");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("acme\\n2026"), "{text}");
    }
}
