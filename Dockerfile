# Multi-stage build: a static-ish release binary on a slim, non-root runtime image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY src src
COPY migrations migrations
COPY openapi.yaml openapi.yaml
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/bunker --create-home bunker
COPY --from=build /src/target/release/bunker /usr/local/bin/bunker
USER 10001:10001
WORKDIR /var/lib/bunker
ENV BUNKER_LISTEN=0.0.0.0:3000
EXPOSE 3000
ENTRYPOINT ["bunker"]
# Without --dev: a container started without DATABUNKER_WRAPPINGKEY refuses to start instead of
# serving on 0.0.0.0 with a key kept beside the data. `demo` is there for trying Bunker.
CMD ["serve"]
