"""What ``manage.py seed`` loads: categories, the client whitelist, the rules and FAQ pages.

Plain data and one function that fills the page templates with the site's settings; the
``seed`` command does the writing (by natural key, so it can run any number of times).
"""

from __future__ import annotations

from dataclasses import dataclass

# (slug, name, position). The slug "other" must exist: uploads fall back to it.
CATEGORIES: tuple[tuple[str, str, int], ...] = (
    ("movies", "Movies", 10),
    ("tv", "TV", 20),
    ("music", "Music", 30),
    ("games", "Games", 40),
    ("software", "Software", 50),
    ("books", "Books", 60),
    ("other", "Other", 100),
)

# Whitelisted clients: Azureus-style peer_id prefixes (BEP 20, ``-XXvvvv-``) of current
# releases. A peer_id passes when it starts with one of these.
CLIENT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("-TR3", "Transmission 3.x"),
    ("-TR4", "Transmission 4.x"),
    ("-qB4", "qBittorrent 4.x"),
    ("-qB5", "qBittorrent 5.x"),
    ("-DE2", "Deluge 2.x"),
    # rTorrent reports its engine, libtorrent (rakshasa) 0.13/0.15: "-lt0D60-", "-lt0F00-".
    ("-lt0", "rTorrent (libtorrent 0.x)"),
    ("-LT1", "libtorrent-rasterbar 1.x"),
    ("-LT2", "libtorrent-rasterbar 2.x"),
    # aria2 is not Azureus-style: its peer_ids start "A2-1-37-0-".
    ("A2-", "aria2"),
    # The PBTS peer (python -m receipts.peer, docs/bep10.md): "-PB0100-".
    ("-PB0", "PBTS peer"),
)


@dataclass(frozen=True, slots=True)
class PageSeed:
    """A site page: ``body`` is Markdown with ``str.format`` fields (see ``page_context``)."""

    slug: str
    title: str
    body: str


RULES = PageSeed(
    slug="rules",
    title="Rules",
    body="""\
Breaking these rules can cost you your downloading rights or your account. Staff decisions
are recorded; if you think one was wrong, ask a moderator.

## 1. One account per person

- One account per person, for life. Do not share, sell or trade accounts.
- If you lose access to your account, ask staff to recover it; do not make a new one.
- Invites are for people you know and trust. You answer for the people you invite: if they
  cheat or sell invites, your account may lose its invites too.

## 2. Ratio

Your ratio is what you uploaded divided by what you downloaded.

- The minimum ratio is **{min_ratio}**.
- The first **{grace}** you download are free of the rule (the grace allowance), so new
  members can get started.
- Past the grace allowance, a member whose ratio is below {min_ratio} can still seed but
  cannot start new downloads until the ratio is back above the minimum.
- Freeleech torrents do not count towards your download; double-upload torrents count
  twice towards your upload.
- Keep seeding what you download, ideally to a ratio of 1.0 or more.

## 3. Clients

- Use only the clients on the whitelist: current releases of Transmission, qBittorrent,
  Deluge, rTorrent, libtorrent-based clients and aria2. Other clients are refused.
- No cheating clients and no modified clients. Reporting more upload or less download than
  you really did (ratio cheating, "ghost leeching", fake seeding) gets the account banned.
- Disable DHT, PEX and local peer discovery for our torrents (clients do it by themselves
  for private torrents).

## 4. Your passkey

- Your passkey is the secret part of your announce URL. Never share it, never post a
  .torrent file downloaded from this site anywhere else.
- If you think your passkey leaked, reset it at once on the Security page of your profile:
  the old one stops working immediately.

## 5. Uploads

- Upload only complete, working content in the right category, with a useful name and
  description.
- No duplicates of an existing torrent, no password-protected archives, no malware.
- Seed what you upload until at least a few other members have a complete copy.

## 6. Behaviour

- Be polite to other members and to staff.
- Do not ask for invites on this site, and do not trade invites anywhere.
""",
)

FAQ = PageSeed(
    slug="faq",
    title="Frequently asked questions",
    body="""\
## How do I start downloading?

Download a .torrent file from its page and open it in your client. Every .torrent you
download from here already contains your **personal announce URL**; you do not need to add
anything.

## What is my announce URL?

It is shown on your profile and on its Security page, and looks like this:

    {base_url}/announce/<your passkey>

The 32-character passkey in it identifies you to the tracker: it is how your upload and
download are credited to your account. Treat it like a password: **keep it secret**. Anyone
who has it can announce as you and ruin your ratio. Do not paste it in forums, screenshots or
bug reports, and never share .torrent files downloaded from here.

## My passkey leaked. What now?

Reset it on the Security page of your profile. The old passkey stops working at once; download the
.torrent files of what you are seeding again (or edit the tracker URL in your client) so they
carry the new one.

## How is my ratio computed?

Ratio = uploaded / downloaded, as reported by your client to the tracker. The minimum is
**{min_ratio}**, and the first **{grace}** of downloads are not counted against you. The
Rules page has the details.

## The tracker refuses my client.

Your client or its version is not on the whitelist. Use a current release of Transmission,
qBittorrent, Deluge, rTorrent, a libtorrent-based client or aria2.

## Why do I see no peers?

This is a private tracker: DHT, PEX and local peer discovery are off, so peers come only from
the tracker. Check that your client announced recently, that the torrent is approved, and
that your announce URL contains your current passkey.

## What are receipts?

Receipts make upload figures verifiable. When your client receives data from a peer, a
receipt-aware client signs a small statement with your key: "I received these bytes of this
torrent from that member". The uploader's client sends these signed receipts to the site,
which checks the signatures in batches and credits the bytes to both members as **verified**
upload and download.

A cheating client can lie about what it uploaded, but it cannot forge other members'
signatures, so verified figures are trusted more than announced ones. They also make up your
portable reputation, which can be published so that other communities can check it.
Receipts are optional: members whose clients do not sign them keep their announced figures.

## Who can I ask for help?

Ask a staff member. Say what you tried and what your client reported, but never include
your passkey.
""",
)

PAGES: tuple[PageSeed, ...] = (RULES, FAQ)

GIB = 1024**3
MIB = 1024**2


def human_bytes(n: int) -> str:
    """Bytes in binary units as members read them: ``5 GiB``, ``1.5 GiB``, ``512 MiB``."""
    if n >= GIB:
        value, unit = n / GIB, "GiB"
    elif n >= MIB:
        value, unit = n / MIB, "MiB"
    else:
        return f"{n} bytes"
    return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"


def page_context(*, min_ratio: float, grace_bytes: int, base_url: str) -> dict[str, str]:
    """The fields page bodies use: ``min_ratio``, ``grace``, ``base_url``."""
    return {
        "min_ratio": f"{min_ratio:g}",
        "grace": human_bytes(grace_bytes),
        "base_url": base_url.rstrip("/"),
    }


def render_page(page: PageSeed, context: dict[str, str]) -> str:
    """The page body with the settings filled in (Markdown)."""
    return page.body.format(**context)
