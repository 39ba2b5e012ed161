"""The Maelstrom adapter: N copies of any program speaking the Maelstrom protocol."""
