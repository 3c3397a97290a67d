"""Prometheus metrics (prometheus-client) and the protected ``/metrics`` endpoint.

With several worker processes ``mitmachen serve`` sets PROMETHEUS_MULTIPROC_DIR (an empty directory)
before the workers start, and every worker writes its samples there; ``/metrics`` then aggregates them.
``/metrics`` answers only to addresses in METRICS_ALLOW (default 127.0.0.1 and ::1, requests without
forwarding headers, i.e. not through the reverse proxy) or to ``Authorization: Bearer METRICS_TOKEN``;
everyone else gets 404 (ASVS V13.4.5).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

log = logging.getLogger("mitmachen.metrics")

HTTP_REQUESTS = Counter("mitmachen_http_requests", "HTTP requests answered", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "mitmachen_http_request_duration_seconds",
    "Time from request to the end of the response",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BALLOTS_CAST = Counter(
    "mitmachen_ballots_cast", "Ballots accepted (committed): kind=cast (first) or replaced", ["kind"]
)
MAILS_QUEUED = Counter("mitmachen_mails_queued", "Mails queued in the outbox (committed)")
MAILS_SENT = Counter("mitmachen_mails_sent", "Mails handed to the mail server")
MAILS_FAILED = Counter("mitmachen_mails_failed", "Mails given up after the last attempt")
MAIL_ATTEMPT_ERRORS = Counter(
    "mitmachen_mail_attempt_errors", "Failed delivery attempts that will be retried"
)

LOCAL_ADDRESSES = "127.0.0.1,::1"
FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


_PENDING_KEY = "mitmachen_metrics_pending"


def ballot_cast(db: Session, kind: str = "cast") -> None:
    """Called by the voting package when it accepts a ballot; counted once ``db`` commits."""
    db.info.setdefault(_PENDING_KEY, []).append(
        (BALLOTS_CAST, ("replaced" if kind == "replaced" else "cast",))
    )


@event.listens_for(OrmSession, "after_commit")
def _count_committed(session: OrmSession) -> None:
    for counter, labels in session.info.pop(_PENDING_KEY, ()):
        counter.labels(*labels).inc() if labels else counter.inc()


@event.listens_for(OrmSession, "after_rollback")
def _forget_rolled_back(session: OrmSession) -> None:
    session.info.pop(_PENDING_KEY, None)


def parse_networks(value: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated addresses or CIDR networks; raises ValueError on a malformed entry."""
    return [ipaddress.ip_network(item.strip(), strict=False) for item in value.split(",") if item.strip()]


def address_in(host: str, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def allowed(request: Request) -> bool:
    settings = request.app.state.settings
    token = settings.metrics_token
    header = request.headers.get("authorization", "")
    if token and header.lower().startswith("bearer "):
        if hmac.compare_digest(header[7:].strip().encode(), token.encode()):
            return True
    if any(h in request.headers for h in FORWARDING_HEADERS):
        return False  # through the reverse proxy: only the token opens the door
    host = request.scope.get("client", ("", 0))[0] if request.scope.get("client") else ""
    return address_in(host, parse_networks(settings.metrics_allow))


class OutboxCollector:
    """The outbox backlog, read from the database at scrape time (the same for every worker)."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def collect(self):
        from app import outbox
        from app.database import new_session

        pending = GaugeMetricFamily(
            "mitmachen_mail_outbox_pending", "Mails waiting to be sent (queued or retrying)"
        )
        failed = GaugeMetricFamily("mitmachen_mail_outbox_failed", "Mails given up after the last attempt")
        try:
            with new_session(self.engine) as db:
                counts = outbox.stats(db)
        except Exception:  # the scrape still reports the process metrics
            log.warning("outbox backlog not readable", exc_info=True)
            return
        pending.add_metric([], counts["pending"])
        failed.add_metric([], counts["failed"])
        yield pending
        yield failed


def render_metrics(engine) -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process = CollectorRegistry()
        multiprocess.MultiProcessCollector(process)  # every worker's samples, summed
    else:
        from prometheus_client import REGISTRY as process
    backlog = CollectorRegistry()
    backlog.register(OutboxCollector(engine))
    return generate_latest(process) + generate_latest(backlog)


async def metrics_endpoint(request: Request) -> Response:
    if not allowed(request):
        return PlainTextResponse("Not Found", status_code=404)
    from starlette.concurrency import run_in_threadpool

    body = await run_in_threadpool(render_metrics, request.app.state.engine)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
