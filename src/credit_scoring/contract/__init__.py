"""The data contract: every table's columns, types, levels and keys, and the checks against it."""
