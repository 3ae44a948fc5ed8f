"""tongban's protocol library: envelopes, headers, directory, ledger, metrics."""
