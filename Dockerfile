# The podiam image: `podiam` (server, webhook, every command) and the slim `podiam-agent`.
#   docker build -t <registry>/podiam:0.1.0 .
FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p podiam -p podiam-agent \
 && install -D -m 0755 target/release/podiam /out/podiam \
 && install -D -m 0755 target/release/podiam-agent /out/podiam-agent

# glibc and CA certificates, no shell; runs as 65532 unless a manifest says otherwise (the
# agent's containers run as root with one capability each, see deploy/kubernetes/agent.yaml).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/podiam /out/podiam-agent /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/podiam"]
