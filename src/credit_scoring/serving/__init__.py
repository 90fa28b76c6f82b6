"""What the service runs: the package, request checks, scoring, reasons, the decision log."""
