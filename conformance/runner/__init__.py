"""What every ``kubemc conform`` adapter needs to run and to stop cleanly:
argument types, the command's report and exit code, signals, process trees,
and the lock that tells a live run from a dead one's leftovers."""
