"""Services of the receipts app (writes): keys, reports, verification, attestation.

Views, serializers, admin actions and tasks call these; each owns its transaction.
"""
