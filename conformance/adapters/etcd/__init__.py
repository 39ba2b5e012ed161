"""The etcd adapter: a local 3-member cluster (or ``--endpoints``) and its client."""
