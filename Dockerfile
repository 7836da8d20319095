# The podiam image: `podiam` (server, webhook, every command) and the slim `podiam-agent`.
#   docker build -t <registry>/podiam:0.1.0 .
#
# The layout is the one `scripts/image` assembles FROM scratch from local parts, which CI
# builds and runs; CI also builds this file with local stand-ins for the two bases
# (`scripts/image --dockerfile`), so the upstream bases are the only untested part.
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
# release, or dev for a quicker unoptimised build
ARG PROFILE=release
WORKDIR /src
COPY . .
RUN cargo build --locked --profile "${PROFILE}" -p podiam --bin podiam -p podiam-agent --bin podiam-agent \
 && dir=target/$([ "${PROFILE}" = dev ] && echo debug || echo "${PROFILE}") \
 && install -D -m 0755 "$dir/podiam" /out/usr/local/bin/podiam \
 && install -D -m 0755 "$dir/podiam-agent" /out/usr/local/bin/podiam-agent \
 && install -d -m 0755 /out/var/lib/podiam

# glibc, libgcc and CA certificates, no shell; runs as 65532 unless a manifest says otherwise
# (the agent's containers run as root with one capability each, see deploy/kubernetes/agent.yaml).
FROM ${RUNTIME_IMAGE}
COPY --from=build /out/usr/local/bin/ /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/var/lib/podiam/ /var/lib/podiam/
# The server's data (a volume's mount point; owned by the user).
ENV PODIAM_DATA_DIR=/var/lib/podiam
USER 65532:65532
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/podiam"]
