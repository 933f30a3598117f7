"""The stack's distribution as CloudFront's API shows it, and the one path by which a new configuration reaches the
POPs (``UpdateDistribution`` and an edited ``--distribution`` file alike).

The control process owns the current configuration, persisted in the state directory
(``<state>/cloudfront/distribution.json``: what ``aws cloudfront get-distribution`` prints, plus its ``ETag``, the
``--distribution`` file it came from and the custom cache / origin request policies it may use). A change is
validated by the loader the POPs use (:func:`edge.cdn.config.distribution.load_distribution`), persisted with a new
ETag and ``Status: InProgress``, then pushed to every POP's admin socket (``PUT /distribution``), where each POP
loads it again with its settings and swaps its compiled plans between requests
(:meth:`edge.cdn.server.pop.PopState.apply_distribution`); when every POP has it, the status is ``Deployed``
(CloudFront's two statuses, https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_Distribution.html).
A POP that starts later reads the persisted document.

UpdateDistribution follows the API reference
(https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_UpdateDistribution.html): the whole configuration
replaces the old one (nothing is merged) and must carry the fields an update requires (``InvalidArgument`` naming
the first one missing; a configuration from the ``--distribution`` file gets CloudFront's values for them),
``IfMatch`` must be the current ETag (missing: ``InvalidIfMatchVersion``; stale: ``PreconditionFailed``),
``CallerReference`` cannot change (``IllegalUpdate``), an unknown Id is ``NoSuchDistribution``. A configuration
the loader refuses is ``InvalidArgument`` with the loader's message, which names the field
(``DistributionConfig.CacheBehaviors.Items[0].PathPattern: ...``), or the more precise code CloudFront has for it
(``NoSuchOrigin``, ``NoSuchCachePolicy``, ``NoSuchOriginRequestPolicy``, ``InconsistentQuantities``,
``InvalidLambdaFunctionAssociation``, ``InvalidFunctionAssociation``).

The ``--distribution`` file: at start, a file unchanged since the document was written (same path and SHA-256)
keeps the document, so API updates survive a restart; a changed file replaces it. While the stack runs the file
hot-reloads, with or without ``--watch`` (CloudFront applies a configuration without anyone restarting anything):
saving it deploys it like an UpdateDistribution; a file the loader refuses keeps the running configuration and
logs the error naming the field. The distribution keeps its Id (and so its cache keys) across both kinds of change
unless the file itself names one (the ``get-distribution`` shape).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge.cdn.cloudfront_functions.api_errors import CloudFrontApiError, api_error
from edge.cdn.cloudfront_functions.limits import DEFAULT_ACCOUNT
from edge.cdn.config.distribution import Distribution, load_distribution
from edge.cdn.config.policies import ConfigError, parse_cache_policy_config, parse_origin_request_policy_config
from edge.cdn.config.settings import Settings
from edge.control.cloudfront_api.shapes import complete_required

__all__ = ["UPDATE_REQUIRED", "UPDATE_REQUIRED_BEHAVIOR", "DistributionService", "config_error", "document_path",
           "effective_settings", "load_document", "missing_update_field", "new_etag", "read_document",
           "watch_distribution_file", "with_update_fields"]

log = logging.getLogger("edgelab.control.distribution")

Push = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any]]]  # the document -> per-POP result ({"error"} failed)
RETRY_S = 1.0  # a POP that did not take a deployment is retried this often


def new_etag() -> str:
    """An ETag as CloudFront spells them (``E2QWRUHAPOMQZL``)."""
    return "E" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(13))


def now_iso() -> str:
    t = dt.datetime.now(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def document_path(state_dir: Path) -> Path:
    return state_dir / "cloudfront" / "distribution.json"


def read_document(state_dir: Path) -> dict[str, Any] | None:
    """The persisted document, or None when there is none (or it cannot be read: logged)."""
    path = document_path(state_dir)
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.error("cannot read %s (%s): starting from the --distribution file", path, exc)
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("Distribution"), dict) else None


def _write_document(state_dir: Path, doc: Mapping[str, Any]) -> None:
    path = document_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(json.dumps(doc, indent=1).encode())
    os.replace(tmp, path)  # readers (a POP starting) see the old or the new document, never half of one


def effective_settings(settings: Settings, doc: Mapping[str, Any]) -> Settings:
    """``settings`` with the custom policies the document carries (created through the API), by id."""
    cps = {pid: parse_cache_policy_config(pid, cfg, f"CachePolicy {pid}")
           for pid, cfg in (doc.get("CachePolicies") or {}).items()}
    orps = {pid: parse_origin_request_policy_config(pid, cfg, f"OriginRequestPolicy {pid}")
            for pid, cfg in (doc.get("OriginRequestPolicies") or {}).items()}
    if not cps and not orps:
        return settings
    return replace(settings, cache_policies={**settings.cache_policies, **cps},
                   origin_request_policies={**settings.origin_request_policies, **orps})


def load_document(doc: Mapping[str, Any], settings: Settings) -> Distribution:
    """The distribution of a persisted/pushed document, loaded as a POP loads it. Raises ConfigError."""
    return load_distribution({"ETag": doc.get("ETag", ""), "Distribution": doc["Distribution"]},
                             effective_settings(settings, doc))


# What UpdateDistribution requires beyond CreateDistribution, with the values CloudFront gives a distribution created
# without them ("Required API fields for creating and updating distributions",
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/distribution-overview-required-fields.html).
# A configuration from the --distribution file gets them (so that get-distribution-config prints a configuration
# update-distribution accepts back); an UpdateDistribution without one is refused, naming it.
_METHODS = {"Quantity": 2, "Items": ["HEAD", "GET"]}
UPDATE_REQUIRED: dict[str, Any] = {
    "Aliases": {"Quantity": 0}, "DefaultRootObject": "", "CacheBehaviors": {"Quantity": 0},
    "CustomErrorResponses": {"Quantity": 0},
    "Logging": {"Enabled": False, "IncludeCookies": False, "Bucket": "", "Prefix": ""},
    "PriceClass": "PriceClass_All",
    "ViewerCertificate": {"CloudFrontDefaultCertificate": True, "SSLSupportMethod": "vip",
                          "MinimumProtocolVersion": "TLSv1", "CertificateSource": "cloudfront"},
    "Restrictions": {"GeoRestriction": {"RestrictionType": "none", "Quantity": 0}},
    "WebACLId": "", "HttpVersion": "http2",
}
UPDATE_REQUIRED_BEHAVIOR: dict[str, Any] = {
    "AllowedMethods": {**_METHODS, "CachedMethods": _METHODS}, "SmoothStreaming": False, "Compress": False,
    "LambdaFunctionAssociations": {"Quantity": 0}, "FieldLevelEncryptionId": "",
}


def _behaviors(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    items = (config.get("CacheBehaviors") or {}).get("Items") or []
    return [("DistributionConfig.DefaultCacheBehavior", config.get("DefaultCacheBehavior")),
            *((f"DistributionConfig.CacheBehaviors.Items[{i}]", b) for i, b in enumerate(items))]


def with_update_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with the fields UpdateDistribution requires added where missing (CloudFront's values)."""
    out = {**copy.deepcopy(UPDATE_REQUIRED), **copy.deepcopy(dict(config))}
    for _, behavior in _behaviors(out):
        if isinstance(behavior, dict):
            for key, value in UPDATE_REQUIRED_BEHAVIOR.items():
                behavior.setdefault(key, copy.deepcopy(value))
    return out


def missing_update_field(config: Mapping[str, Any]) -> str | None:
    """The path of the first field UpdateDistribution requires that ``config`` lacks (None: none missing)."""
    for key in UPDATE_REQUIRED:
        if key not in config:
            return f"DistributionConfig.{key}"
    for path, behavior in _behaviors(config):
        for key in UPDATE_REQUIRED_BEHAVIOR:
            if isinstance(behavior, Mapping) and key not in behavior:
                return f"{path}.{key}"
    return None


_CODE_BY_FIELD = (
    (".TargetOriginId", "NoSuchOrigin"),
    (".CachePolicyId", "NoSuchCachePolicy"),
    (".OriginRequestPolicyId", "NoSuchOriginRequestPolicy"),
)


def config_error(exc: ConfigError) -> CloudFrontApiError:
    """A loader error as CloudFront's API error: the code CloudFront has for it, else InvalidArgument; the
    message names the field and says what to change."""
    message = f"{exc.path}: {exc.message}"
    for prefix in ("InvalidLambdaFunctionAssociation", "InvalidFunctionAssociation"):
        if exc.message.startswith(prefix + ":"):
            return api_error(prefix, f"{exc.path}: {exc.message[len(prefix) + 1:].strip()}")
    if exc.path.endswith(".Quantity") and "but Items has" in exc.message:
        return api_error("InconsistentQuantities", message)
    for suffix, code in _CODE_BY_FIELD:
        if exc.path.endswith(suffix) and ("no origin" in exc.message or "unknown" in exc.message):
            return api_error(code, message)
    return api_error("InvalidArgument", message)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DistributionService:
    """The distribution of the stack (one per stack), its persistence and its deployment to the POPs."""

    def __init__(self, state_dir: Path, settings: Settings, source: Path, doc: dict[str, Any], *,
                 account: str = DEFAULT_ACCOUNT) -> None:
        self.state_dir, self.settings, self.source, self.account = state_dir, settings, source, account
        self._doc = doc
        self._distribution = load_document(doc, settings)
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._generation = 0  # bumped by every change; the deployer marks Deployed only the generation it pushed
        self.push: Push | None = None  # wired by the control app: PUT /distribution on every POP's admin socket
        self.policies: Callable[[], dict[str, Any]] = dict  # -> {"CachePolicies": {...}, "OriginRequestPolicies"}
        self.in_progress_invalidations: Callable[[], int] = lambda: 0

    # ------------------------------------------------------------------------------------------ start
    @classmethod
    def open(cls, state_dir: Path, settings: Settings, source: Path,
             policies: Mapping[str, Any] | None = None) -> DistributionService:
        """The document to start with (blocking: call it in a thread): the persisted one while the file is
        unchanged, else one made from the file. Raises ConfigError for a file the loader refuses."""
        raw = source.read_bytes()
        prev = read_document(state_dir)
        same_file = prev is not None and (prev.get("Source") or {}).get("Path") == str(source)
        doc: dict[str, Any] | None = None
        if prev is not None and same_file and prev["Source"].get("Sha256") == _sha256(raw):
            try:
                doc = {**prev, **(policies or {})}
                load_document(doc, settings)
            except (ConfigError, KeyError, TypeError) as exc:
                log.error("the persisted distribution %s no longer loads (%s): starting from %s",
                          document_path(state_dir), exc, source)
                doc = None
        if doc is None:
            doc = _from_file(raw, source, prev if same_file else None, settings, policies or {})
        doc["Distribution"]["Status"] = "Deployed"  # the POPs start with it
        _write_document(state_dir, doc)
        return cls(state_dir, settings, source, doc)

    # ------------------------------------------------------------------------------------------ reads
    @property
    def distribution(self) -> Distribution:
        """The current configuration, loaded."""
        return self._distribution

    @property
    def id(self) -> str:
        return str(self._doc["Distribution"]["Id"])

    @property
    def etag(self) -> str:
        return str(self._doc["ETag"])

    @property
    def status(self) -> str:
        return str(self._doc["Distribution"]["Status"])

    def document(self) -> dict[str, Any]:
        return copy.deepcopy(self._doc)

    def check_id(self, dist_id: str) -> None:
        if dist_id != self.id:
            raise api_error("NoSuchDistribution", f"The specified distribution does not exist: {dist_id!r} (this "
                                                  f"stack serves {self.id}; aws cloudfront list-distributions).")

    def get(self, dist_id: str) -> tuple[dict[str, Any], str]:
        """GetDistribution: the Distribution and its ETag."""
        self.check_id(dist_id)
        d = copy.deepcopy(self._doc["Distribution"])
        d["InProgressInvalidationBatches"] = self.in_progress_invalidations()
        d["ActiveTrustedSigners"] = {"Enabled": False, "Quantity": 0}
        d["ActiveTrustedKeyGroups"] = {"Enabled": False, "Quantity": 0}
        return d, self.etag

    def get_config(self, dist_id: str) -> tuple[dict[str, Any], str]:
        self.check_id(dist_id)
        return copy.deepcopy(self._doc["Distribution"]["DistributionConfig"]), self.etag

    def summary(self) -> dict[str, Any]:
        """The DistributionSummary of ListDistributions (API_DistributionSummary: CloudFront's defaults for what
        the configuration leaves out)."""
        d = self._doc["Distribution"]
        cfg = d["DistributionConfig"]
        return {
            "Id": d["Id"], "ARN": d["ARN"], "ETag": self.etag, "Status": d["Status"],
            "LastModifiedTime": d["LastModifiedTime"], "DomainName": d["DomainName"],
            "Aliases": cfg.get("Aliases") or {"Quantity": 0}, "Origins": cfg["Origins"],
            "OriginGroups": cfg.get("OriginGroups"), "DefaultCacheBehavior": cfg["DefaultCacheBehavior"],
            "CacheBehaviors": cfg.get("CacheBehaviors") or {"Quantity": 0},
            "CustomErrorResponses": cfg.get("CustomErrorResponses") or {"Quantity": 0},
            "Comment": cfg.get("Comment", ""), "PriceClass": cfg.get("PriceClass") or "PriceClass_All",
            "Enabled": cfg.get("Enabled", True),
            "ViewerCertificate": cfg.get("ViewerCertificate") or {
                "CloudFrontDefaultCertificate": True, "SSLSupportMethod": "vip", "MinimumProtocolVersion": "TLSv1",
                "CertificateSource": "cloudfront"},
            "Restrictions": cfg.get("Restrictions") or {"GeoRestriction": {"RestrictionType": "none", "Quantity": 0}},
            "WebACLId": cfg.get("WebACLId", ""), "HttpVersion": cfg.get("HttpVersion") or "http2",
            "IsIPV6Enabled": cfg.get("IsIPV6Enabled", True), "Staging": cfg.get("Staging", False),
        }

    def list_distributions(self, marker: str | None, max_items: int) -> dict[str, Any]:
        """ListDistributions: the one distribution of the stack (after it, nothing)."""
        items = [] if marker and marker >= self.id else [self.summary()]
        return {"Marker": marker or "", "MaxItems": max_items, "IsTruncated": False, "Quantity": len(items),
                "Items": items}

    def policy_in_use(self, kind: str, policy_id: str) -> bool:
        """Whether the configuration references the policy (``CachePolicyId`` / ``OriginRequestPolicyId``)."""
        cfg = self._doc["Distribution"]["DistributionConfig"]
        behaviors = [cfg.get("DefaultCacheBehavior") or {}, *((cfg.get("CacheBehaviors") or {}).get("Items") or [])]
        return any(isinstance(b, dict) and b.get(kind) == policy_id for b in behaviors)

    # ------------------------------------------------------------------------------------------ changes
    async def update(self, dist_id: str, if_match: str | None, config: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """UpdateDistribution (see the module docstring). Returns the Distribution (``InProgress``) and its ETag."""
        async with self._lock:
            self.check_id(dist_id)
            if not if_match:
                raise api_error("InvalidIfMatchVersion", "The If-Match version is missing: pass the ETag that "
                                                         "get-distribution-config returned (--if-match).")
            if if_match != self.etag:
                raise api_error("PreconditionFailed", f"The If-Match version {if_match!r} is not the current one "
                                                      f"({self.etag}): get the configuration again and reapply "
                                                      "your change.")
            old = self._doc["Distribution"]["DistributionConfig"].get("CallerReference")
            if config.get("CallerReference") != old:
                raise api_error("IllegalUpdate", f"CallerReference cannot change (it is {old!r}): send the value "
                                                 "get-distribution-config returned.")
            missing = missing_update_field(config)
            if missing is not None:
                raise api_error("InvalidArgument", f"{missing} is required in an UpdateDistribution (CloudFront "
                                                   "requires more fields to update a distribution than to create "
                                                   "one): send the whole configuration get-distribution-config "
                                                   "returned, with your change.")
            doc = _changed_doc(self._doc, config, self.policies())
            try:
                distribution = await asyncio.to_thread(load_document, doc, self.settings)
            except ConfigError as exc:
                raise config_error(exc) from None
            await self._commit(doc, distribution)
            d, etag = self.get(dist_id)
        log.info("distribution %s updated through the API: ETag %s, deploying to the POPs", self.id, etag)
        return d, etag

    async def file_changed(self) -> bool:
        """The ``--distribution`` file was written: deploy it, or keep the running configuration and log why
        (naming the field). True when a new configuration was committed."""
        async with self._lock:
            try:
                raw = await asyncio.to_thread(self.source.read_bytes)
            except OSError as exc:
                log.error("distribution file %s cannot be read (%s): the running configuration (ETag %s) stays",
                          self.source, exc, self.etag)
                return False
            if (self._doc.get("Source") or {}).get("Sha256") == _sha256(raw):
                return False
            try:
                doc = await asyncio.to_thread(_from_file, raw, self.source, self._doc, self.settings, self.policies())
                distribution = await asyncio.to_thread(load_document, doc, self.settings)
            except ConfigError as exc:
                log.error("distribution file %s: %s -- the running configuration (ETag %s) stays in service; fix "
                          "the file and save it again", self.source, exc, self.etag)
                return False
            doc["Distribution"]["Status"] = "InProgress"
            await self._commit(doc, distribution)
        log.info("distribution file %s changed: ETag %s, deploying to the POPs", self.source, self.etag)
        return True

    async def redeploy(self) -> None:
        """Deploy the current configuration again with the current custom policies (a policy it uses changed)."""
        async with self._lock:
            doc = {**copy.deepcopy(self._doc), **self.policies()}
            doc["Distribution"]["Status"] = "InProgress"
            await self._commit(doc, await asyncio.to_thread(load_document, doc, self.settings))

    async def _commit(self, doc: dict[str, Any], distribution: Distribution) -> None:
        await asyncio.to_thread(_write_document, self.state_dir, doc)
        self._doc, self._distribution = doc, distribution
        self._generation += 1
        self._changed.set()

    async def deploy_forever(self) -> None:
        """The deployer (one task, owned by the control process): push each committed change to every POP; mark
        it Deployed when every POP has it; retry the POPs that failed every second."""
        reported: str | None = None
        while True:
            await self._changed.wait()
            self._changed.clear()
            generation, doc = self._generation, self._doc
            if self.push is None:
                continue
            try:
                results = await self.push(doc)
            except Exception as exc:  # a bug in the fan-out must not end deployments: report, retry
                log.exception("deploying distribution ETag %s failed", doc["ETag"])
                results = {"*": {"error": f"{exc.__class__.__name__}: {exc}"}}
            failed = {pop: r for pop, r in results.items() if isinstance(r, Mapping) and "error" in r}
            if failed:
                message = "; ".join(f"{pop}: {r.get('error')} {r.get('detail') or ''}".strip()
                                    for pop, r in sorted(failed.items()))
                if message != reported:
                    log.error("distribution ETag %s not deployed to every POP yet (%s); retrying every %.0f s",
                              doc["ETag"], message, RETRY_S)
                    reported = message
                await asyncio.sleep(RETRY_S)
                self._changed.set()
                continue
            reported = None
            async with self._lock:
                if self._generation == generation:
                    done = copy.deepcopy(self._doc)
                    done["Distribution"]["Status"] = "Deployed"
                    await asyncio.to_thread(_write_document, self.state_dir, done)
                    self._doc = done
            log.info("distribution %s ETag %s deployed to %d POP(s)", self.id, doc["ETag"], len(results))


def _changed_doc(current: Mapping[str, Any], config: dict[str, Any], policies: Mapping[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(dict(current))
    doc.update(copy.deepcopy(dict(policies)))
    d = doc["Distribution"]
    d["DistributionConfig"] = complete_required("DistributionConfig", config)
    d["Status"], d["LastModifiedTime"] = "InProgress", now_iso()
    doc["ETag"] = new_etag()
    return doc


def _from_file(raw: bytes, source: Path, prev: Mapping[str, Any] | None, settings: Settings,
               policies: Mapping[str, Any]) -> dict[str, Any]:
    """A document from the contents of the ``--distribution`` file (any of the loader's three shapes); the Id
    is the file's own, else ``prev``'s, else the one the loader derives. Raises ConfigError."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(str(source), f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(source), "must contain a JSON object")
    loaded = load_distribution(data, effective_settings(settings, policies))
    named = isinstance(data.get("Distribution"), dict) and data["Distribution"].get("Id")
    if isinstance(data.get("Distribution"), dict):
        config = data["Distribution"]["DistributionConfig"]
    else:
        config = data.get("DistributionConfig", data)
    if named or prev is None:
        dist_id, domain = loaded.id, loaded.domain_name
    else:
        dist_id, domain = prev["Distribution"]["Id"], prev["Distribution"]["DomainName"]
    config = {"CallerReference": f"edgelab-{dist_id}", **config}
    doc: dict[str, Any] = {
        "ETag": new_etag(),
        "Distribution": {"Id": dist_id, "ARN": f"arn:aws:cloudfront::{DEFAULT_ACCOUNT}:distribution/{dist_id}",
                         "Status": "InProgress", "LastModifiedTime": now_iso(), "DomainName": domain,
                         "DistributionConfig": with_update_fields(complete_required("DistributionConfig", config))},
        "Source": {"Path": str(source), "Sha256": _sha256(raw)},
        **copy.deepcopy(dict(policies)),
    }
    load_document(doc, settings)  # what completion added must load too
    return doc


async def watch_distribution_file(service: DistributionService, stop: asyncio.Event) -> None:
    """Hot-reload the ``--distribution`` file until ``stop`` is set: every write (in place, or an editor's
    rename over it) goes through :meth:`DistributionService.file_changed`. The directory is watched, not the
    file, so that a replaced file is still followed."""
    import watchfiles

    target = service.source

    def is_target(_change: watchfiles.Change, path: str) -> bool:
        return Path(path) == target

    async for _changes in watchfiles.awatch(target.parent, stop_event=stop, watch_filter=is_target, debounce=100,
                                            step=20, recursive=False):
        await service.file_changed()
