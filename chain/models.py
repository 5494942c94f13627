"""Chain models arrive with the on-chain reputation issue (contracts, push records)."""
