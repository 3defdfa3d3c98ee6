"""Prometheus metrics (prometheus-client), one registry for the process.

Vendor clients record request latency and credential renewals here; the engine records runs and
operations; the daemon (``service``) serves them on ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

VENDOR_REQUEST_SECONDS = Histogram(
    "syncd_vendor_request_seconds",
    "Vendor HTTP request latency, by vendor, method (API operation) and HTTP status",
    ["vendor", "method", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CREDENTIAL_RENEWALS = Counter(
    "syncd_credential_renewals_total",
    "Token/session renewals, by vendor and how (proactive, reactive, credentials)",
    ["vendor", "how"],
    registry=REGISTRY,
)
CREDENTIAL_EXPIRY = Gauge(
    "syncd_credential_expiry_timestamp_seconds",
    "When the current token/session expires (unix time)",
    ["vendor"],
    registry=REGISTRY,
)
RUNS = Counter("syncd_runs_total", "Sync runs by result", ["result"], registry=REGISTRY)
OPERATIONS = Counter(
    "syncd_operations_total",
    "WORKBOX operations by kind, action and result",
    ["kind", "action", "result"],
    registry=REGISTRY,
)
LAST_SUCCESS = Gauge(
    "syncd_last_success_timestamp_seconds", "Unix time of the last successful sync", registry=REGISTRY
)
QUARANTINE_SIZE = Gauge(
    "syncd_quarantine_records", "Source records in quarantine", ["source"], registry=REGISTRY
)
ADOPTED = Counter(
    "syncd_adopted_objects_total",
    "Objects a plan created that WORKBOX already held (create replayed as update) on a run that "
    "reported adoption: the ledger did not know them (a lost or replaced staging database?)",
    registry=REGISTRY,
)
QUOTA_EXCEEDED = Counter(
    "syncd_vendor_quota_exceeded_total",
    "Cycles whose pushing stopped because the vendor's quota was spent (API Gateway 429 errorCode 400)",
    ["vendor"],
    registry=REGISTRY,
)
DRIFT_REPAIRED = Counter(
    "syncd_drift_repaired_total",
    "Entities deleted in WORKBOX by hand that a re-assertion created again, by kind",
    ["kind"],
    registry=REGISTRY,
)
REASSERT_LAG = Gauge(
    "syncd_reassert_lag_seconds",
    "How long ago the entity asserted longest ago was last told to WORKBOX (after this cycle)",
    registry=REGISTRY,
)
COLLISIONS = Gauge(
    "syncd_unmapped_collisions",
    "Members held back because a member WORKBOX holds unmapped has their e-mail address",
    registry=REGISTRY,
)
HELD_PLANS = Gauge("syncd_held_plans", "Plans held by a safety rule, awaiting approval", registry=REGISTRY)
QUEUED_APPROVALS = Gauge(
    "syncd_approvals_queued",
    "Plans approved while another process led, waiting for the leader to apply them",
    registry=REGISTRY,
)
STALE_SOURCES = Gauge(
    "syncd_source_stale", "1 if the source's last read was not trusted", ["source"], registry=REGISTRY
)
LEASE_HOLDER = Gauge(
    "syncd_lease_held", "1 if this process holds the leader lease", ["holder"], registry=REGISTRY
)
