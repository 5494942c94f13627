"""JSON API of the receipts app: keys, reports, attest, keygen."""
