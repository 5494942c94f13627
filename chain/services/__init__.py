"""Chain services (writes). Importing the package registers every record type's finalizer
(push batches, migrations) with :mod:`chain.services.transactions`."""

from chain.services import deploy, migration, push, transactions  # noqa: F401
