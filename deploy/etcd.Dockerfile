# An etcd member: etcd's own server built static from its Go modules
# (deploy/etcd), a non-root user, nothing else. Nothing is pulled.
# Built by deploy/cluster.sh, whose build context is build/cluster/etcd.
FROM scratch
COPY passwd /etc/passwd
COPY --chown=65532:65532 data/ /data/
COPY etcd /usr/local/bin/etcd
USER 65532:65532
WORKDIR /data
VOLUME /data
EXPOSE 2379 2380
ENTRYPOINT ["/usr/local/bin/etcd"]
