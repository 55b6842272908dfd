# HandoffRail: the service and the CLI in one small image (docs/operations.md, "Containers").
#   docker build -t handoffrail .
#   docker run -p 8080:8080 -p 8081:8081 -v handoffrail-data:/var/lib/handoffrail handoffrail
# Multi-stage: the toolchain builds the release binary; the runtime image holds only it, CA roots and curl (for
# the health check), runs as an unprivileged user, and keeps its state (SQLite database, record signing key,
# proxy CA) in the /var/lib/handoffrail volume.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that a change to the sources does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY benches benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin handoffrail \
    && rm -rf src
COPY src src
COPY migrations migrations
COPY rules rules
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin handoffrail \
    && strip target/release/handoffrail

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install --yes --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/handoffrail --shell /usr/sbin/nologin handoffrail \
    && install --directory --owner handoffrail --group handoffrail --mode 0700 /var/lib/handoffrail
COPY --from=build /src/target/release/handoffrail /usr/local/bin/handoffrail
# The rules directory (trusted endpoints, reverse routes, actions, redaction): the repository's commented example
# until a directory of your own is mounted over it.
COPY rules /etc/handoffrail/rules
USER handoffrail:handoffrail
WORKDIR /var/lib/handoffrail
ENV HANDOFFRAIL_HOST=0.0.0.0 \
    HANDOFFRAIL_DATA_DIR=/var/lib/handoffrail \
    HANDOFFRAIL_RULES=/etc/handoffrail/rules \
    HANDOFFRAIL_LOG_FORMAT=json
VOLUME ["/var/lib/handoffrail"]
# 8080: the HTTP API; 8081: the interceptor proxy.
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl --fail --silent --show-error http://127.0.0.1:8080/ready || exit 1
ENTRYPOINT ["handoffrail"]
CMD ["serve"]
