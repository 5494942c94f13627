"""The latency measurements: each runs ``iterations`` timed samples (after a few untimed
warm-up runs) of one operation through the project's own code paths, in milliseconds.

| name                     | what is timed                                                    |
|--------------------------|------------------------------------------------------------------|
| keygen_bls               | ``receipts.bls.keygen()``: KeyGen (32 random bytes) and SkToPk     |
| keygen_tee               | TEE ``GetKey`` for a fresh path, then KeyGen from the derived key |
| attest_api               | ``POST /attest`` (the real view, token auth): the receipt bytes   |
| attest_tee_quote         | TEE ``GetQuote`` of sha256(public key, counter)                   |
| register_e2e             | ``member_create``, keygen, PopProve, ``POST /register`` (201)      |
| receipt_sign             | ``receipts.client.sign_receipt`` of one receipt                   |
| receipt_verify           | the site backend's ``verify`` of one receipt (cold key cache)     |
| receipt_batch_verify     | ``batch_verify`` of a batch of N receipts (cold key cache)        |
| receipt_aggregate        | ``receipts.bls.aggregate`` of N signatures                        |
| receipt_aggregate_verify | ``aggregate_verify`` of N receipts under one aggregate (cold)     |

The TEE rows run only when :mod:`experiments.tee` found a TEE; otherwise they are kept with no
samples and reported as n/a.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from experiments.django_site import Fixtures, api_client, post_json
from experiments.tee import TeeStatus

WARMUP = 3


@dataclass
class Measurement:
    """One latency measurement: its name, a one-line description, the unit of its samples,
    whether it needs a TEE, and the samples (empty when it did not run)."""

    name: str
    what: str
    tee: bool = False
    unit: str = "ms"
    samples: list[float] = field(default_factory=list)


def timed(
    run: Callable[[int], Any],
    iterations: int,
    *,
    before: Callable[[int], None] | None = None,
    warmup: int = WARMUP,
) -> list[float]:
    """Milliseconds of ``run(i)`` for ``i`` in ``range(iterations)``, after ``warmup`` untimed
    calls (with negative ``i``). ``before(i)``, if given, runs untimed before each call.

    Raises:
        RuntimeError: ``run`` returned ``False`` (a verification that failed is a broken
            experiment, never a sample).
    """
    samples: list[float] = []
    for i in range(-warmup, iterations):
        if before is not None:
            before(i)
        start = time.perf_counter()
        result = run(i)
        elapsed = time.perf_counter() - start
        if result is False:
            raise RuntimeError(f"run({i}) returned False")
        if i >= 0:
            samples.append(elapsed * 1000.0)
    return samples


@dataclass
class SignedSet:
    """``count`` receipts of one uploader for distinct pieces of the fixture torrent, each
    signed by a different downloader: public keys, receipt bytes and signatures."""

    pks: list[bytes]
    msgs: list[bytes]
    sigs: list[bytes]

    def items(self) -> list[Any]:
        from receipts.bls import SignedItem

        rows = zip(self.pks, self.msgs, self.sigs, strict=True)
        return [SignedItem((pk,), (msg,), sig) for pk, msg, sig in rows]


def signed_set(fixtures: Fixtures, count: int) -> SignedSet:
    """Sign ``count`` receipts with the client (:func:`receipts.client.sign_receipt`)."""
    from receipts import bls
    from receipts.client import KeyPair, b64decode, sign_receipt
    from receipts.site import site_realm

    _, uploader = bls.keygen()
    out = SignedSet([], [], [])
    for i in range(count):
        downloader = KeyPair(*bls.keygen())
        signed = sign_receipt(
            downloader,
            realm=site_realm(),
            info_hash=bytes.fromhex(fixtures.info_hash),
            piece_index=i % (fixtures.piece_count - 1),
            piece_length=fixtures.piece_length,
            uploader_pk=uploader,
        )
        out.pks.append(downloader.pk)
        out.msgs.append(b64decode(signed["receipt"], "receipt"))
        out.sigs.append(b64decode(signed["signature"], "signature"))
    return out


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def run_latency(
    *,
    fixtures: Fixtures,
    signed: SignedSet,
    tee: TeeStatus,
    iterations: int,
    log: Callable[[str], None],
) -> list[Measurement]:
    """Run every latency measurement (those needing a TEE only when one is present).

    Args:
        fixtures: the torrent and token of :func:`experiments.django_site.fixtures_create`.
        tee: what :func:`experiments.tee.detect` found.
        iterations: timed samples per measurement.
        signed: the N receipts (:func:`signed_set`) of the batch and aggregate rows.
        log: where progress lines go.
    """
    from receipts import bls
    from receipts.client import KeyPair, registration_body, sign_receipt
    from receipts.site import bls_backend, site_realm
    from tracker.services.members import member_api_token, member_create

    backend = bls_backend()
    clear = getattr(backend, "clear_caches", lambda: None)
    piece_length = fixtures.piece_length
    client = api_client(fixtures.token)
    _, uploader_pk = bls.keygen()
    downloader = KeyPair(*bls.keygen())
    realm = site_realm()
    info_hash = bytes.fromhex(fixtures.info_hash)
    pieces = fixtures.piece_count - 1  # every piece but the short last one
    run_id = secrets.token_hex(4)
    batch = len(signed.pks)
    items = signed.items()
    aggregate = bls.aggregate(signed.sigs)

    def keygen_tee(i: int) -> bytes:
        ikm = tee.provider.derive_key(f"pbts/experiments/{run_id}/{i}")
        if len(ikm) < 32:
            raise RuntimeError(f"the TEE derived {len(ikm)} bytes; BLS KeyGen needs 32")
        return bls.keygen(ikm)[1]

    def attest_api(i: int) -> bool:
        body = {
            "info_hash": fixtures.info_hash,
            "piece_index": i % pieces,
            "uploader_pk": _b64(uploader_pk),
            "downloader_pk": _b64(downloader.pk),
        }
        return len(post_json(client, "/attest", body, expect=200)["receipt"]) > 0

    def quote(i: int) -> bool:
        data = hashlib.sha256(downloader.pk + i.to_bytes(8, "big", signed=True)).digest()
        return len(tee.provider.quote(data)) > 0

    def register(i: int) -> bool:
        member = member_create(username=f"exp-{run_id}-{i}")
        keypair = KeyPair(*bls.keygen())
        reply = post_json(
            api_client(member_api_token(member)),
            "/register",
            registration_body(keypair),
            expect=201,
        )
        return reply["public_key"] == keypair.pk_b64

    def sign(i: int) -> dict[str, str]:
        return sign_receipt(
            downloader,
            realm=realm,
            info_hash=info_hash,
            piece_index=i % pieces,
            piece_length=piece_length,
            uploader_pk=uploader_pk,
        )

    def verify(i: int) -> bool:
        k = i % batch
        return backend.verify(signed.pks[k], signed.msgs[k], signed.sigs[k])

    plan: list[tuple[Measurement, Callable[[int], Any], Callable[[int], None] | None]] = [
        (Measurement("keygen_bls", "BLS KeyGen + SkToPk (client)"), lambda i: bls.keygen(), None),
        (Measurement("keygen_tee", "TEE GetKey + BLS KeyGen", tee=True), keygen_tee, None),
        (Measurement("attest_api", "POST /attest (real view)"), attest_api, None),
        (Measurement("attest_tee_quote", "TEE GetQuote", tee=True), quote, None),
        (
            Measurement("register_e2e", "member + keygen + PoP + POST /register"),
            register,
            None,
        ),
        (Measurement("receipt_sign", "sign one receipt (client)"), sign, None),
        (
            Measurement("receipt_verify", f"verify one receipt ({backend.name}, cold)"),
            verify,
            lambda i: clear(),
        ),
        (
            Measurement("receipt_batch_verify", f"batch verify of {batch} (cold)"),
            lambda i: backend.batch_verify(items),
            lambda i: clear(),
        ),
        (
            Measurement("receipt_aggregate", f"aggregate {batch} signatures"),
            lambda i: bls.aggregate(signed.sigs),
            None,
        ),
        (
            Measurement("receipt_aggregate_verify", f"aggregate verify of {batch} (cold)"),
            lambda i: backend.aggregate_verify(signed.pks, signed.msgs, aggregate),
            lambda i: clear(),
        ),
    ]
    out = []
    for measurement, run, before in plan:
        if measurement.tee and not tee.present:
            log(f"  {measurement.name:26} n/a ({tee.description})")
        else:
            measurement.samples = timed(run, iterations, before=before)
            mean = sum(measurement.samples) / len(measurement.samples)
            log(f"  {measurement.name:26} mean {mean:9.3f} ms")
        out.append(measurement)
    return out


# --- throughput workloads (experiments.scaling) -----------------------------------------------

SCALING_WORKLOADS = {
    "verify": "verify one receipt (warm key cache)",
    "sign": "sign one receipt (client)",
    "attest": "POST /attest (real view)",
}


def op_factory(workload: str, *, fixtures: Fixtures, signed: SignedSet) -> Callable[[], Any]:
    """A factory of the operation ``workload`` (a key of :data:`SCALING_WORKLOADS`); each
    worker calls it once, in its own thread or process, to get its own client or backend.

    Raises:
        KeyError: an unknown workload.
    """
    from receipts import bls
    from receipts.client import KeyPair, sign_receipt
    from receipts.site import bls_backend, site_realm

    if workload not in SCALING_WORKLOADS:
        raise KeyError(workload)
    count = len(signed.pks)
    pieces = fixtures.piece_count - 1
    uploader_pk, downloader_pk = signed.pks[0], signed.pks[1 % count]

    def verify() -> Callable[[int], bool]:
        backend = bls_backend()
        return lambda i: backend.verify(
            signed.pks[i % count], signed.msgs[i % count], signed.sigs[i % count]
        )

    def sign() -> Callable[[int], Any]:
        keypair = KeyPair(*bls.keygen())
        realm, info_hash = site_realm(), bytes.fromhex(fixtures.info_hash)
        return lambda i: sign_receipt(
            keypair,
            realm=realm,
            info_hash=info_hash,
            piece_index=i % pieces,
            piece_length=fixtures.piece_length,
            uploader_pk=uploader_pk,
        )

    def attest() -> Callable[[int], bool]:
        client = api_client(fixtures.token)
        body = {
            "info_hash": fixtures.info_hash,
            "uploader_pk": _b64(uploader_pk),
            "downloader_pk": _b64(downloader_pk),
        }
        return lambda i: bool(
            post_json(client, "/attest", {**body, "piece_index": i % pieces}, expect=200)
        )

    return {"verify": verify, "sign": sign, "attest": attest}[workload]
