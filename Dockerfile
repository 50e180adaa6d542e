# The contact-server image: FROM scratch around static binaries, so it
# needs no base image (none can be pulled on the build machines). Build the
# binaries first, then the image:
#
#   make image
#   # or: CGO_ENABLED=0 go build -trimpath -o bin/ ./cmd/contact-server ./cmd/contactctl
#   #     docker build -t contactstore/contact-server:dev .
FROM scratch
COPY bin/contact-server bin/contactctl /
# contact protocol, memberlist (tcp and udp), HTTP (metrics, health, status page)
EXPOSE 9000 7946/tcp 7946/udp 8080
VOLUME ["/data"]
ENV CONTACT_LISTEN=:9000 CONTACT_GOSSIP=:7946 CONTACT_HTTP=:8080 CONTACT_DATA_DIR=/data
HEALTHCHECK --interval=2s --timeout=2s --start-period=5s --retries=3 CMD ["/contactctl", "health", "--http", "127.0.0.1:8080"]
ENTRYPOINT ["/contact-server"]
