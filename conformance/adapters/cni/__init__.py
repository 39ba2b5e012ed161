"""The CNI adapter: plugins executed as the CNI spec says, in namespaces the run creates."""
