"""The CRI adapter: a private containerd (or ``--endpoint``) driven over CRI v1."""
