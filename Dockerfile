# The CDS Hooks service: `docker build -t pathway .`, then
# `docker run -p 8080:8080 -v $PWD/site.toml:/etc/pathway/site.toml pathway`.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p pathway-cli

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/pathway --create-home pathway
COPY --from=build /src/target/release/pathway /usr/local/bin/pathway
USER pathway
WORKDIR /var/lib/pathway
ENV PATHWAY_LISTEN=0.0.0.0:8080 PATHWAY_FEEDBACK_DB=/var/lib/pathway/feedback.sqlite
EXPOSE 8080
# A site mounts its configuration (trusted clients, base URL) at /etc/pathway/site.toml.
CMD ["pathway", "serve", "--config", "/etc/pathway/site.toml"]
