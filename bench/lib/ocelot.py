"""Ocelot, the C++ tracker of Gazelle sites (WhatCD/Ocelot 1.0), as a target of the announce
benchmark: issue 17's anchor, a tracker that keeps per-member statistics in a database as PBTS
does (one ``xbt_files_users`` row per peer, flushed to MariaDB every ``schedule_interval``).

Nothing of Ocelot is in the repository (GPL, third party). Its source is read from
``.local/src/ocelot/`` (or ``PBTS_OCELOT_SRC``): WhatCD/Ocelot's layout, the ``.cpp`` files at
the top level. It is built with one g++ line (the flags of its ``Makefile.am``) into
``.local/build/ocelot/ocelot`` when missing or older than its sources. MariaDB runs as a
private instance (data directory ``.local/mariadb/``, a Unix socket there, no TCP port),
started when not running and stopped at the end if this run started it. The database
``pbts_bench_ocelot`` gets the six Gazelle tables Ocelot reads and writes (from WhatCD/Gazelle's
``gazelle.sql``, the version whose ``xbt_files_users`` key is ``(peer_id, fid, uid)`` as Ocelot
1.0 requires) and the bench's 10,000 torrents, 2,000 members and the ``-TR4`` client prefix.

Ocelot's own count of answered announces is the ``successful announcements`` line of its
``/<report_password>/report?get=stats`` page. Its database side is the MariaDB server process.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

from bench.lib.data import BenchData
from bench.lib.env import CLIENT_PREFIX, PEER_ID_PREFIX, ROOT
from bench.lib.procs import Server, free_port, start_server
from bench.lib.wrk import pct
from core.processes import stop_process

NAME = "ocelot"
SOURCE_DIR = Path(os.environ.get("PBTS_OCELOT_SRC") or ROOT / ".local" / "src" / "ocelot")
BUILD_DIR = ROOT / ".local" / "build" / "ocelot"
MARIADB_DIR = ROOT / ".local" / "mariadb"
DATABASE = "pbts_bench_ocelot"
#: Ocelot's flush period (its ``schedule_interval``), seconds.
SCHEDULE_INTERVAL = 3
#: WhatCD/Ocelot 1.0's translation units (``ocelot_SOURCES`` of its ``Makefile.am``).
SOURCES = (
    "config.cpp",
    "db.cpp",
    "events.cpp",
    "misc_functions.cpp",
    "ocelot.cpp",
    "report.cpp",
    "response.cpp",
    "schedule.cpp",
    "site_comm.cpp",
    "user.cpp",
    "worker.cpp",
)
# AM_CXXFLAGS and AM_LDFLAGS of its Makefile.am; the libraries its configure.ac looks for.
CXXFLAGS = [
    "-std=c++11",
    "-march=native",
    "-O2",
    "-fvisibility=hidden",
    "-fvisibility-inlines-hidden",
    "-fomit-frame-pointer",
    "-fno-ident",
    "-Wall",
    "-Wfatal-errors",
    "-pthread",
]
LDFLAGS = ["-Wl,-O1", "-Wl,--as-needed"]
LIBS = ["-lmysqlpp", "-lmariadb", "-lev", "-lboost_iostreams", "-lboost_system"]
#: Debian packages the build and the database need.
DEBS = (
    "g++ libmysql++-dev libmariadb-dev libev-dev libboost-iostreams-dev libboost-system-dev"
    " mariadb-server mariadb-client"
)
_HEADERS = ("/usr/include/mysql++/mysql++.h", "/usr/include/ev++.h", "/usr/include/boost/asio.hpp")

# The tables Ocelot 1.0 reads and writes (its README's list), as WhatCD/Gazelle's gazelle.sql
# (commit 96f89020d0aaf0314bc458f84dd8ffae0f285ade) defines them.
GAZELLE_TABLES = r"""
CREATE TABLE IF NOT EXISTS `torrents` (
  `ID` int(10) NOT NULL AUTO_INCREMENT,
  `GroupID` int(10) NOT NULL,
  `UserID` int(10) DEFAULT NULL,
  `Media` varchar(20) DEFAULT NULL,
  `Format` varchar(10) DEFAULT NULL,
  `Encoding` varchar(15) DEFAULT NULL,
  `Remastered` enum('0','1') NOT NULL DEFAULT '0',
  `RemasterYear` int(4) DEFAULT NULL,
  `RemasterTitle` varchar(80) NOT NULL DEFAULT '',
  `RemasterCatalogueNumber` varchar(80) NOT NULL DEFAULT '',
  `RemasterRecordLabel` varchar(80) NOT NULL DEFAULT '',
  `Scene` enum('0','1') NOT NULL DEFAULT '0',
  `HasLog` enum('0','1') NOT NULL DEFAULT '0',
  `HasCue` enum('0','1') NOT NULL DEFAULT '0',
  `LogScore` int(6) NOT NULL DEFAULT '0',
  `info_hash` blob NOT NULL,
  `FileCount` int(6) NOT NULL,
  `FileList` mediumtext NOT NULL,
  `FilePath` varchar(255) NOT NULL DEFAULT '',
  `Size` bigint(12) NOT NULL,
  `Leechers` int(6) NOT NULL DEFAULT '0',
  `Seeders` int(6) NOT NULL DEFAULT '0',
  `last_action` datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  `FreeTorrent` enum('0','1','2') NOT NULL DEFAULT '0',
  `FreeLeechType` enum('0','1','2','3','4','5','6','7') NOT NULL DEFAULT '0',
  `Time` datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  `Description` text,
  `Snatched` int(10) unsigned NOT NULL DEFAULT '0',
  `balance` bigint(20) NOT NULL DEFAULT '0',
  `LastReseedRequest` datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  `TranscodedFrom` int(10) NOT NULL DEFAULT '0',
  PRIMARY KEY (`ID`),
  UNIQUE KEY `InfoHash` (`info_hash`(40)),
  KEY `GroupID` (`GroupID`),
  KEY `UserID` (`UserID`),
  KEY `Media` (`Media`),
  KEY `Format` (`Format`),
  KEY `Encoding` (`Encoding`),
  KEY `Year` (`RemasterYear`),
  KEY `FileCount` (`FileCount`),
  KEY `Size` (`Size`),
  KEY `Seeders` (`Seeders`),
  KEY `Leechers` (`Leechers`),
  KEY `Snatched` (`Snatched`),
  KEY `last_action` (`last_action`),
  KEY `Time` (`Time`),
  KEY `FreeTorrent` (`FreeTorrent`)
) ENGINE=InnoDB CHARSET utf8;

CREATE TABLE IF NOT EXISTS `users_freeleeches` (
  `UserID` int(10) NOT NULL,
  `TorrentID` int(10) NOT NULL,
  `Time` datetime NOT NULL,
  `Expired` tinyint(1) NOT NULL DEFAULT '0',
  `Downloaded` bigint(20) NOT NULL DEFAULT '0',
  `Uses` int(10) NOT NULL DEFAULT '1',
  PRIMARY KEY (`UserID`,`TorrentID`),
  KEY `Time` (`Time`),
  KEY `Expired_Time` (`Expired`,`Time`)
) ENGINE=InnoDB CHARSET utf8;

CREATE TABLE IF NOT EXISTS `users_main` (
  `ID` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `Username` varchar(20) NOT NULL,
  `Email` varchar(255) NOT NULL,
  `PassHash` varchar(60) NOT NULL,
  `Secret` char(32) NOT NULL,
  `IRCKey` char(32) DEFAULT NULL,
  `LastLogin` datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  `LastAccess` datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  `IP` varchar(15) NOT NULL DEFAULT '0.0.0.0',
  `Class` tinyint(2) NOT NULL DEFAULT '5',
  `Uploaded` bigint(20) unsigned NOT NULL DEFAULT '0',
  `Downloaded` bigint(20) unsigned NOT NULL DEFAULT '0',
  `Title` text NOT NULL,
  `Enabled` enum('0','1','2') NOT NULL DEFAULT '0',
  `Paranoia` text,
  `Visible` enum('1','0') NOT NULL DEFAULT '1',
  `Invites` int(10) unsigned NOT NULL DEFAULT '0',
  `PermissionID` int(10) unsigned NOT NULL,
  `CustomPermissions` text,
  `can_leech` tinyint(4) NOT NULL DEFAULT '1',
  `torrent_pass` char(32) NOT NULL,
  `RequiredRatio` double(10,8) NOT NULL DEFAULT '0.00000000',
  `RequiredRatioWork` double(10,8) NOT NULL DEFAULT '0.00000000',
  `ipcc` varchar(2) NOT NULL DEFAULT '',
  `FLTokens` int(10) NOT NULL DEFAULT '0',
  PRIMARY KEY (`ID`),
  UNIQUE KEY `Username` (`Username`),
  KEY `Email` (`Email`),
  KEY `PassHash` (`PassHash`),
  KEY `LastAccess` (`LastAccess`),
  KEY `IP` (`IP`),
  KEY `Class` (`Class`),
  KEY `Uploaded` (`Uploaded`),
  KEY `Downloaded` (`Downloaded`),
  KEY `Enabled` (`Enabled`),
  KEY `Invites` (`Invites`),
  KEY `torrent_pass` (`torrent_pass`),
  KEY `RequiredRatio` (`RequiredRatio`),
  KEY `cc_index` (`ipcc`),
  KEY `PermissionID` (`PermissionID`)
) ENGINE=InnoDB CHARSET utf8;

CREATE TABLE IF NOT EXISTS `xbt_client_whitelist` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `peer_id` varchar(20) DEFAULT NULL,
  `vstring` varchar(200) DEFAULT '',
  PRIMARY KEY (`id`),
  UNIQUE KEY `peer_id` (`peer_id`)
) ENGINE=InnoDB CHARSET utf8;

CREATE TABLE IF NOT EXISTS `xbt_files_users` (
  `uid` int(11) NOT NULL,
  `active` tinyint(1) NOT NULL DEFAULT '1',
  `announced` int(11) NOT NULL DEFAULT '0',
  `completed` tinyint(1) NOT NULL DEFAULT '0',
  `downloaded` bigint(20) NOT NULL DEFAULT '0',
  `remaining` bigint(20) NOT NULL DEFAULT '0',
  `uploaded` bigint(20) NOT NULL DEFAULT '0',
  `upspeed` int(10) unsigned NOT NULL DEFAULT '0',
  `downspeed` int(10) unsigned NOT NULL DEFAULT '0',
  `corrupt` bigint(20) NOT NULL DEFAULT '0',
  `timespent` int(10) unsigned NOT NULL DEFAULT '0',
  `useragent` varchar(51) NOT NULL DEFAULT '',
  `connectable` tinyint(4) NOT NULL DEFAULT '1',
  `peer_id` binary(20) NOT NULL DEFAULT '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0',
  `fid` int(11) NOT NULL,
  `mtime` int(11) NOT NULL DEFAULT '0',
  `ip` varchar(15) NOT NULL DEFAULT '',
  PRIMARY KEY (`peer_id`,`fid`,`uid`),
  KEY `remaining_idx` (`remaining`),
  KEY `fid_idx` (`fid`),
  KEY `mtime_idx` (`mtime`),
  KEY `uid_active` (`uid`,`active`)
) ENGINE=InnoDB CHARSET utf8;

CREATE TABLE IF NOT EXISTS `xbt_snatched` (
  `uid` int(11) NOT NULL DEFAULT '0',
  `tstamp` int(11) NOT NULL,
  `fid` int(11) NOT NULL,
  `IP` varchar(15) NOT NULL,
  KEY `fid` (`fid`),
  KEY `tstamp` (`tstamp`),
  KEY `uid_tstamp` (`uid`,`tstamp`)
) ENGINE=InnoDB CHARSET utf8;
"""

# The private MariaDB instance. sql_mode without STRICT_TRANS_TABLES as on Gazelle's servers:
# Ocelot's torrent flush (INSERT INTO torrents (ID,Seeders,Leechers,Snatched,Balance) ...
# ON DUPLICATE KEY UPDATE) names none of the NOT NULL columns without a default, which strict
# mode refuses. max_allowed_packet: one peer flush is a single INSERT of every announce of the
# last 3 s (~200 bytes each; 30,000 announces/s make 18 MB, over the 16 MB default).
_MY_CNF = """[mariadbd]
datadir = {data}
socket = {socket}
pid-file = {pid}
log-error = {log}
skip-networking
sql_mode = NO_ENGINE_SUBSTITUTION
max_allowed_packet = 256M
innodb_buffer_pool_size = 1G
"""


def unavailable_reason(src: Path = SOURCE_DIR) -> str:
    """Why the Ocelot target cannot run here (``""``: it can): its source is missing or not
    WhatCD/Ocelot's layout, or a build tool, header or MariaDB binary is missing."""
    if not all((src / name).is_file() for name in SOURCES):
        if (src / "src" / "ocelot.cpp").is_file():
            return (
                f"not available: {src} holds OPSnet/Ocelot (src/, CMake), whose tables and"
                " config differ; this target builds WhatCD/Ocelot 1.0 (the .cpp files at the"
                " top level)"
            )
        return (
            f"not available: no Ocelot source in {src} (clone WhatCD/Ocelot there, or set"
            " PBTS_OCELOT_SRC to a checkout of it)"
        )
    missing = [tool for tool in ("g++", "mariadb", "mariadb-install-db") if not _which(tool)]
    missing += [header for header in _HEADERS if not Path(header).is_file()]
    if not _which("mariadbd"):
        missing.append("mariadbd")
    if missing:
        return f"not available: missing {', '.join(missing)} (apt-get install -y {DEBS})"
    return ""


def _which(name: str) -> str | None:
    """``shutil.which`` that also looks in the sbin directories (mariadbd is in /usr/sbin)."""
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")


def build(src: Path = SOURCE_DIR, build_dir: Path = BUILD_DIR) -> Path:
    """Compile Ocelot from ``src`` into ``build_dir/ocelot`` unless that binary is newer than
    every source file; returns the binary's path. One g++ line with the flags of Ocelot's
    Makefile.am (its autotools files need autoconf-archive macros; the line is equivalent).

    Raises:
        RuntimeError: the compiler failed (its last lines are in the message).
    """
    binary = build_dir / "ocelot"
    newest = max(p.stat().st_mtime for p in src.iterdir() if p.suffix in (".cpp", ".h"))
    if binary.is_file() and binary.stat().st_mtime >= newest:
        return binary
    build_dir.mkdir(parents=True, exist_ok=True)
    include = ["-I/usr/include/mysql++"]
    config = _which("mariadb_config")
    if config:
        include += subprocess.run(
            [config, "--include"], capture_output=True, text=True, check=True
        ).stdout.split()
    tmp = build_dir / "ocelot.tmp"
    cmd = ["g++", *CXXFLAGS, *include, *[str(src / name) for name in SOURCES]]
    cmd += ["-o", str(tmp), *LDFLAGS, *LIBS]
    print(f"  building Ocelot from {src} (about a minute) ...", flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-15:])
        raise RuntimeError(f"Ocelot build failed:\n{tail}")
    tmp.replace(binary)
    (build_dir / "build-command.txt").write_text(" ".join(cmd) + "\n")
    return binary


class MariaDB:
    """The bench's own MariaDB server: data directory, socket, pid file and log under
    ``base``; no TCP port (``skip-networking``), so it never meets another server's 3306.
    ``root`` logs in through the socket as the OS user who created the data directory."""

    def __init__(self, base: Path = MARIADB_DIR) -> None:
        self.base = base
        self.data = base / "data"
        self.socket = base / "mysqld.sock"
        self.pid_file = base / "mariadbd.pid"
        self.log = base / "mariadbd.log"
        self.cnf = base / "my.cnf"
        self.proc: subprocess.Popen | None = None

    def running_pid(self) -> int | None:
        """The PID of this instance's server if it runs and answers on its socket."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError, IndexError):
            return None
        if comm not in ("mariadbd", "mysqld"):
            return None
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(str(self.socket))
        except OSError:
            return None
        return pid

    def ensure(self, timeout: float = 60.0) -> int:
        """Start the server unless it runs (creating the data directory the first time);
        returns its PID.

        Raises:
            RuntimeError: mariadb-install-db failed, or the server did not answer within
                ``timeout`` seconds (the end of its log is in the message).
        """
        pid = self.running_pid()
        if pid is not None:
            return pid
        self.base.mkdir(parents=True, exist_ok=True)
        self.cnf.write_text(
            _MY_CNF.format(data=self.data, socket=self.socket, pid=self.pid_file, log=self.log)
        )
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        if not (self.data / "mysql").is_dir():
            user = os.environ.get("USER") or ("root" if os.geteuid() == 0 else "")
            cmd = [_which("mariadb-install-db") or "mariadb-install-db"]
            cmd += [f"--defaults-file={self.cnf}", *as_root, "--skip-test-db"]
            cmd += ["--auth-root-authentication-method=socket"]
            if user:
                cmd.append(f"--auth-root-socket-user={user}")
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"mariadb-install-db failed: {done.stderr[-1500:]}")
        cmd = [_which("mariadbd") or "mariadbd", f"--defaults-file={self.cnf}", *as_root]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.running_pid()
            if pid is not None:
                return pid
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        tail = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
        raise RuntimeError(f"MariaDB did not start ({self.base}):\n{tail}")

    def sql(self, text: str, database: str = "") -> str:
        """Run SQL ``text`` with the ``mariadb`` client as root over the socket; returns its
        tab-separated output (no column names).

        Raises:
            RuntimeError: the client failed (its error is in the message).
        """
        cmd = ["mariadb", f"--socket={self.socket}", "-u", "root", "--batch", "--skip-column-names"]
        if database:
            cmd.append(f"--database={database}")
        done = subprocess.run(cmd, input=text, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"mariadb: {done.stderr.strip()[:1000]}")
        return done.stdout

    def stop(self) -> None:
        """Stop the server if this object started it (SIGTERM: a clean shutdown; SIGKILL after
        60 s)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, grace=60)


def gazelle_data_sql(data: BenchData) -> str:
    """SQL that empties the Gazelle tables and fills them with the bench data: member ``i``
    (0-based, in ``data.passkeys`` order) is user ``i + 1`` with its passkey as
    ``torrent_pass``, torrent ``j`` is ID ``j + 1`` with its 20-byte info_hash, the client
    whitelist holds the bench's ``-TR4`` prefix."""
    users = ",\n".join(
        f"({i + 1}, 'bench{i:05d}', '', '', '', '', '1', 2, 1, '{passkey}')"
        for i, passkey in enumerate(data.passkeys)
    )
    torrents = ",\n".join(
        f"({j + 1}, {j + 1}, 1, UNHEX('{info_hash}'), 1, '', {1 << 30}, NOW())"
        for j, info_hash in enumerate(data.info_hashes)
    )
    tables = ("torrents", "users_main", "users_freeleeches", "xbt_client_whitelist")
    tables += ("xbt_files_users", "xbt_snatched")
    return (
        "".join(f"TRUNCATE `{table}`;\n" for table in tables)
        + "INSERT INTO users_main (ID, Username, Email, PassHash, Secret, Title, Enabled,"
        f" PermissionID, can_leech, torrent_pass) VALUES\n{users};\n"
        + "INSERT INTO torrents (ID, GroupID, UserID, info_hash, FileCount, FileList, Size,"
        f" Time) VALUES\n{torrents};\n"
        + "INSERT INTO xbt_client_whitelist (peer_id, vstring) VALUES"
        f" ('{CLIENT_PREFIX}', 'Transmission 4 (bench)');\n"
    )


def ocelot_conf(port: int, socket_path: Path, report_password: str, site_password: str) -> str:
    """Ocelot's config file (its ``ocelot.conf.dist`` keys). Keep-alive on (60 s idle), as
    for the other targets; numwant capped at 50 (the bench asks for 50); statistics flushed
    every 3 s; ``site_host`` 127.0.0.1 (nothing listens on its port 80 here): Ocelot calls the
    site only to expire freeleech tokens, and the bench has none."""
    settings = {
        "listen_port": port,
        "max_connections": 1024,
        "max_middlemen": 20000,
        "max_read_buffer": 4096,
        "connection_timeout": 10,
        "keepalive_timeout": 60,
        "announce_interval": 1800,
        "max_request_size": 4096,
        "numwant_limit": 50,
        "mysql_host": socket_path,
        "mysql_username": "root",
        "mysql_password": "",
        "mysql_db": DATABASE,
        "report_password": report_password,
        "site_password": site_password,
        "site_host": "127.0.0.1",
        "site_path": "",
        "peers_timeout": 7200,
        "del_reason_lifetime": 86400,
        "reap_peers_interval": 1800,
        "schedule_interval": SCHEDULE_INTERVAL,
        "readonly": "false",
    }
    return "".join(f"{key} = {value}\n" for key, value in settings.items())


class Ocelot:
    """The ``ocelot`` target: its server, its MariaDB, its own count of answered announces.

    ``unavailable`` is ``""`` when it can run (:func:`unavailable_reason`)."""

    def __init__(self, data: BenchData, src: Path = SOURCE_DIR) -> None:
        self.data = data
        self.src = src
        self.unavailable = unavailable_reason(src)
        self.db = MariaDB()
        self.db_pid: int | None = None
        self.report_password = secrets.token_hex(16)
        self.port = 0

    def start(self, workdir: Path) -> Server:
        """Build Ocelot if needed, start MariaDB if needed, load the bench data, start Ocelot
        on a free port and wait until it accepts connections.

        Raises:
            RuntimeError: the build, MariaDB, the data load or Ocelot failed.
        """
        binary = build(self.src)
        self.db_pid = self.db.ensure()
        self.db.sql(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")
        self.db.sql(GAZELLE_TABLES + gazelle_data_sql(self.data), DATABASE)
        self.port = free_port()
        conf = workdir / "ocelot.conf"
        conf.write_text(
            ocelot_conf(self.port, self.db.socket, self.report_password, secrets.token_hex(16))
        )
        return start_server(
            NAME, [str(binary), "-c", str(conf)], port=self.port, env={}, workdir=workdir
        )

    def announces(self, port: int) -> int | None:
        """Ocelot's count of successful announces since it started (its report page);
        ``None`` if it does not answer."""
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", f"/{self.report_password}/report?get=stats")
            body = conn.getresponse().read().decode("latin-1")
            conn.close()
        except (OSError, http.client.HTTPException):
            return None
        match = re.search(r"(\d+) successful announcements", body)
        return int(match.group(1)) if match else None

    def service_pids(self) -> list[int]:
        """The processes whose CPU is Ocelot's database side: the MariaDB server."""
        return [self.db_pid] if self.db_pid else []

    def wait_written(self, timeout: float) -> bool:
        """Wait (bounded by ``timeout`` seconds) until MariaDB holds every announce Ocelot has
        answered so far. Ocelot queues each flush's INSERT and one thread runs the queue in
        order, so a marker announce sent now (a fresh peer, numwant=0) is written last: once
        its ``xbt_files_users`` row exists (a primary-key lookup), so are all before it.
        Returns ``False`` if the marker was refused or its row did not appear in time."""
        if not self.port:
            return False
        peer_id = PEER_ID_PREFIX + secrets.token_bytes(20 - len(PEER_ID_PREFIX))
        query = (
            f"info_hash={pct(bytes.fromhex(self.data.info_hashes[0]))}&peer_id={pct(peer_id)}"
            "&port=6881&uploaded=0&downloaded=0&left=0&corrupt=0&event=started&numwant=0"
            "&compact=1"
        )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", f"/{self.data.passkeys[0]}/announce?{query}")
            body = conn.getresponse().read()
            conn.close()
        except (OSError, http.client.HTTPException):
            return False
        if b"failure reason" in body:
            return False
        check = (
            f"SELECT COUNT(*) FROM xbt_files_users WHERE peer_id = UNHEX('{peer_id.hex()}')"
            " AND fid = 1 AND uid = 1"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                if self.db.sql(check, DATABASE).strip() == "1":
                    return True
            time.sleep(0.25)
        return False

    def stop(self) -> None:
        """Stop MariaDB if this target started it (Ocelot itself is stopped as a server)."""
        self.db.stop()
