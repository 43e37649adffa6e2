# The example's auth service (go run ./examples/refresh-token -serve), for
# the Compose cluster: rotating refresh tokens with reuse detection, and
# GET /stats. Built by deploy/cluster.sh from build/cluster/example.
FROM scratch
COPY passwd /etc/passwd
COPY refresh-token /usr/local/bin/refresh-token
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/refresh-token", "-serve", "-listen", "0.0.0.0:8080"]
