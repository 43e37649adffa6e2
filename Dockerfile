# The runner image: one static binary, CA certificates, a non-root user,
# nothing else. Nothing is pulled: FROM scratch by default, and the binary
# is built on the host first (bash deploy/image.sh does both steps).
# A build on the internet may use another base:
#   docker build --build-arg BASE=gcr.io/distroless/static-debian12 .
ARG BASE=scratch
FROM ${BASE}
COPY build/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY build/image/passwd /etc/passwd
COPY --chown=65532:65532 build/image/data/ /data/
COPY build/image/runner /usr/local/bin/runner
USER 65532:65532
ENV XDG_DATA_HOME=/data \
    XDG_STATE_HOME=/data/state \
    MODRUN_LISTEN=0.0.0.0:8787
WORKDIR /data
VOLUME /data
EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["/usr/local/bin/runner", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/runner"]
CMD ["serve"]
