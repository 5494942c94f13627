"""Receipt models arrive with the receipts issue (BLS keys, reports, verification)."""
