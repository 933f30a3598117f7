"""Per-function resources beside the code and configuration: resource-based policies, tags and function URL
configurations (tables ``function_policies``, ``functions.tags``, ``function_urls``). Blocking (SQLite).

- Policies (https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html): AddPermission
  appends a statement (``Sid``, ``Effect: Allow``, ``Principal``, ``Action``, ``Resource`` = the function ARN,
  qualified when the permission is, and ``Condition`` from SourceArn / SourceAccount / PrincipalOrgID /
  FunctionUrlAuthType), GetPolicy returns ``{"Version": "2012-10-17", "Id": "default", "Statement": [...]}``
  as a JSON string with a RevisionId that changes with every permission change. Stored and returned only:
  edgelab does not verify SigV4 signatures, so no caller identity exists to check them against.
- Tags (https://docs.aws.amazon.com/lambda/latest/dg/configuration-tags.html): at most 50, keys 1..128 and
  values 0..256 characters, keys may not start with ``aws:``.
- Function URLs (https://docs.aws.amazon.com/lambda/latest/dg/urls-configuration.html): one per function or
  alias (not a version), AuthType NONE or AWS_IAM, Cors, InvokeMode BUFFERED; the url id is 32 lowercase
  letters and digits, as AWS's.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from edge.invocation.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
    function_not_found,
)
from edge.invocation.models import function_arn
from edge.invocation.registry.db import Database
from edge.invocation.registry.rows import Clock, new_revision, timestamp

__all__ = ["FunctionUrlRecord", "Resources", "statement_from_request"]

_ACTION = re.compile(r"^(lambda:[*]|lambda:[a-zA-Z]+|[*])$")
_SID = re.compile(r"^[a-zA-Z0-9-_]{1,100}$")
_URL_ALPHABET = string.ascii_lowercase + string.digits
MAX_TAGS = 50


@dataclass(frozen=True, slots=True)
class FunctionUrlRecord:
    url_id: str
    function_name: str
    qualifier: str  # '' or an alias
    auth_type: str
    cors: dict[str, Any] | None
    invoke_mode: str
    created: str
    modified: str


def _principal(principal: str) -> Any:
    if principal == "*":
        return "*"
    if re.fullmatch(r"\d{12}", principal):
        return {"AWS": f"arn:aws:iam::{principal}:root"}
    if principal.startswith("arn:"):
        return {"AWS": principal}
    if "." in principal:
        return {"Service": principal}
    raise InvalidParameterValueException(f"The provided principal was invalid. Please check the principal and try "
                                         f"again: {principal}")


def statement_from_request(params: dict[str, Any], resource: str) -> dict[str, Any]:
    """The policy statement AddPermission stores, in the shape GetPolicy returns it."""
    sid, action, principal = params.get("StatementId"), params.get("Action"), params.get("Principal")
    if not isinstance(sid, str) or not _SID.match(sid):
        raise InvalidParameterValueException("StatementId must be 1-100 letters, digits, '-' or '_'")
    if not isinstance(action, str) or not _ACTION.match(action):
        raise InvalidParameterValueException(f"Action must be lambda:<Operation>, lambda:* or *, got {action!r}")
    if not isinstance(principal, str) or not principal:
        raise InvalidParameterValueException("Principal must be a non-empty string")
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Principal": _principal(principal), "Action": action,
                                 "Resource": resource}
    condition: dict[str, dict[str, str]] = {}
    if params.get("SourceArn"):
        condition.setdefault("ArnLike", {})["AWS:SourceArn"] = str(params["SourceArn"])
    if params.get("SourceAccount"):
        condition.setdefault("StringEquals", {})["AWS:SourceAccount"] = str(params["SourceAccount"])
    if params.get("PrincipalOrgID"):
        condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = str(params["PrincipalOrgID"])
    if params.get("EventSourceToken"):
        condition.setdefault("StringEquals", {})["lambda:EventSourceToken"] = str(params["EventSourceToken"])
    if params.get("FunctionUrlAuthType"):
        auth = params["FunctionUrlAuthType"]
        if auth not in ("NONE", "AWS_IAM"):
            raise InvalidParameterValueException("FunctionUrlAuthType must be NONE or AWS_IAM")
        condition.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = auth
    if condition:
        statement["Condition"] = condition
    return statement


def check_tags(tags: Any) -> dict[str, str]:
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise InvalidParameterValueException("Tags must be a map of string keys to string values")
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            raise InvalidParameterValueException(f"Tag key {key!r} must be 1-128 characters and not start with aws:")
        if len(value) > 256:
            raise InvalidParameterValueException(f"The value of tag {key!r} must be at most 256 characters")
    return tags


def check_cors(cors: Any) -> dict[str, Any] | None:
    """The Cors structure of a function URL (AllowCredentials, AllowHeaders, AllowMethods, AllowOrigins,
    ExposeHeaders, MaxAge)."""
    if cors is None:
        return None
    if not isinstance(cors, dict):
        raise InvalidParameterValueException("Cors must be an object")
    known = {"AllowCredentials", "AllowHeaders", "AllowMethods", "AllowOrigins", "ExposeHeaders", "MaxAge"}
    unknown = set(cors) - known
    if unknown:
        raise InvalidParameterValueException(f"Unknown Cors member(s): {', '.join(sorted(unknown))}")
    for member in ("AllowHeaders", "AllowMethods", "AllowOrigins", "ExposeHeaders"):
        if member in cors and (not isinstance(cors[member], list) or not all(isinstance(v, str) for v in cors[member])):
            raise InvalidParameterValueException(f"Cors.{member} must be a list of strings")
    if "MaxAge" in cors and (isinstance(cors["MaxAge"], bool) or not isinstance(cors["MaxAge"], int)
                             or not 0 <= cors["MaxAge"] <= 86400):
        raise InvalidParameterValueException("Cors.MaxAge must be an integer between 0 and 86400")
    if "AllowCredentials" in cors and not isinstance(cors["AllowCredentials"], bool):
        raise InvalidParameterValueException("Cors.AllowCredentials must be a boolean")
    return dict(cors)


class Resources:
    """Policies, tags and function URL configurations over the registry's database."""

    def __init__(self, db: Database, region: str, clock: Clock) -> None:
        self.db = db
        self.region = region
        self.clock = clock

    def _require(self, cur: Any, name: str, qualifier: str) -> None:
        if cur.execute("SELECT 1 FROM functions WHERE name=?", (name,)).fetchone() is None:
            raise function_not_found(name, self.region)
        if qualifier and qualifier != "$LATEST":
            found = cur.execute("SELECT 1 FROM versions WHERE function_name=? AND version=?", (name, qualifier)).fetchone() \
                or cur.execute("SELECT 1 FROM aliases WHERE function_name=? AND name=?", (name, qualifier)).fetchone()
            if found is None:
                raise function_not_found(name, self.region, qualifier)

    # -- policies -----------------------------------------------------------------------------------------

    def add_permission(self, name: str, qualifier: str, params: dict[str, Any]) -> dict[str, Any]:
        statement = statement_from_request(params, function_arn(name, self.region, qualifier or None))
        with self.db.write() as cur:
            self._require(cur, name, qualifier)
            row = cur.execute("SELECT statements, revision_id FROM function_policies WHERE function_name=? AND "
                              "qualifier=?", (name, qualifier)).fetchone()
            statements = json.loads(row[0]) if row else []
            if params.get("RevisionId") and row is not None and params["RevisionId"] != row[1]:
                raise PreconditionFailedException("The Revision Id provided does not match the latest Revision Id. "
                                                  "Call the GetPolicy API to retrieve the latest Revision Id")
            if any(s["Sid"] == statement["Sid"] for s in statements):
                raise ResourceConflictException("The statement id (sid) provided already exists. Please choose "
                                                "another statement id.")
            statements.append(statement)
            cur.execute("INSERT INTO function_policies(function_name, qualifier, statements, revision_id) VALUES "
                        "(?,?,?,?) ON CONFLICT(function_name, qualifier) DO UPDATE SET statements=excluded.statements,"
                        " revision_id=excluded.revision_id", (name, qualifier, json.dumps(statements), new_revision()))
        return statement

    def remove_permission(self, name: str, qualifier: str, sid: str, revision_id: str | None) -> None:
        with self.db.write() as cur:
            self._require(cur, name, qualifier)
            row = cur.execute("SELECT statements, revision_id FROM function_policies WHERE function_name=? AND "
                              "qualifier=?", (name, qualifier)).fetchone()
            statements = json.loads(row[0]) if row else []
            if not any(s["Sid"] == sid for s in statements):
                raise ResourceNotFoundException(f"Statement {sid} is not found in resource policy.")
            if revision_id and row is not None and revision_id != row[1]:
                raise PreconditionFailedException("The Revision Id provided does not match the latest Revision Id. "
                                                  "Call the GetPolicy API to retrieve the latest Revision Id")
            left = [s for s in statements if s["Sid"] != sid]
            if left:
                cur.execute("UPDATE function_policies SET statements=?, revision_id=? WHERE function_name=? AND "
                            "qualifier=?", (json.dumps(left), new_revision(), name, qualifier))
            else:
                cur.execute("DELETE FROM function_policies WHERE function_name=? AND qualifier=?", (name, qualifier))

    def get_policy(self, name: str, qualifier: str) -> tuple[dict[str, Any], str]:
        with self.db.read() as cur:
            self._require(cur, name, qualifier)
            row = cur.execute("SELECT statements, revision_id FROM function_policies WHERE function_name=? AND "
                              "qualifier=?", (name, qualifier)).fetchone()
        if row is None:
            raise ResourceNotFoundException("The resource you requested does not exist.")
        return {"Version": "2012-10-17", "Id": "default", "Statement": json.loads(row[0])}, row[1]

    # -- tags ---------------------------------------------------------------------------------------------

    def tags(self, name: str) -> dict[str, str]:
        with self.db.read() as cur:
            self._require(cur, name, "")
            return dict(json.loads(cur.execute("SELECT tags FROM functions WHERE name=?", (name,)).fetchone()[0]))

    def tag(self, name: str, tags: Any) -> None:
        new = check_tags(tags)
        with self.db.write() as cur:
            self._require(cur, name, "")
            current = json.loads(cur.execute("SELECT tags FROM functions WHERE name=?", (name,)).fetchone()[0])
            merged = {**current, **new}
            if len(merged) > MAX_TAGS:
                raise InvalidParameterValueException(f"A function can have at most {MAX_TAGS} tags")
            cur.execute("UPDATE functions SET tags=? WHERE name=?", (json.dumps(merged), name))

    def untag(self, name: str, keys: list[str]) -> None:
        with self.db.write() as cur:
            self._require(cur, name, "")
            current = json.loads(cur.execute("SELECT tags FROM functions WHERE name=?", (name,)).fetchone()[0])
            cur.execute("UPDATE functions SET tags=? WHERE name=?",
                        (json.dumps({k: v for k, v in current.items() if k not in keys}), name))

    # -- function URLs ------------------------------------------------------------------------------------

    def _url_qualifier(self, cur: Any, name: str, qualifier: str) -> None:
        self._require(cur, name, qualifier)
        if qualifier and qualifier != "$LATEST" and cur.execute(
                "SELECT 1 FROM aliases WHERE function_name=? AND name=?", (name, qualifier)).fetchone() is None:
            raise InvalidParameterValueException("A function URL can be attached to the unqualified function or to "
                                                 f"an alias, not to version {qualifier}.")

    @staticmethod
    def _check_mode(auth_type: Any, invoke_mode: Any) -> None:
        if auth_type not in ("NONE", "AWS_IAM"):
            raise InvalidParameterValueException(f"AuthType must be NONE or AWS_IAM, got {auth_type!r}")
        if invoke_mode == "RESPONSE_STREAM":
            raise InvalidParameterValueException("InvokeMode RESPONSE_STREAM is not supported by edgelab's function "
                                                 "URLs; use BUFFERED (the default).")
        if invoke_mode != "BUFFERED":
            raise InvalidParameterValueException(f"InvokeMode must be BUFFERED or RESPONSE_STREAM, got {invoke_mode!r}")

    def create_url(self, name: str, qualifier: str, params: dict[str, Any]) -> FunctionUrlRecord:
        auth_type, invoke_mode = params.get("AuthType"), params.get("InvokeMode") or "BUFFERED"
        self._check_mode(auth_type, invoke_mode)
        cors = check_cors(params.get("Cors"))
        now = timestamp(self.clock)
        with self.db.write() as cur:
            self._url_qualifier(cur, name, qualifier)
            if cur.execute("SELECT 1 FROM function_urls WHERE function_name=? AND qualifier=?",
                           (name, qualifier)).fetchone():
                raise ResourceConflictException(
                    f"Failed to create function url config for [functionArn = "
                    f"{function_arn(name, self.region, qualifier or None)}]. Error message:  FunctionUrlConfig "
                    "exists for this Lambda function")
            url_id = "".join(secrets.choice(_URL_ALPHABET) for _ in range(32))
            cur.execute("INSERT INTO function_urls(url_id, function_name, qualifier, auth_type, cors, invoke_mode, "
                        "created, modified) VALUES (?,?,?,?,?,?,?,?)",
                        (url_id, name, qualifier, auth_type, None if cors is None else json.dumps(cors), invoke_mode,
                         now, now))
        return self.get_url(name, qualifier)

    def update_url(self, name: str, qualifier: str, params: dict[str, Any]) -> FunctionUrlRecord:
        current = self.get_url(name, qualifier)
        auth_type = params.get("AuthType") or current.auth_type
        invoke_mode = params.get("InvokeMode") or current.invoke_mode
        self._check_mode(auth_type, invoke_mode)
        cors = check_cors(params["Cors"]) if "Cors" in params else current.cors
        with self.db.write() as cur:
            cur.execute("UPDATE function_urls SET auth_type=?, cors=?, invoke_mode=?, modified=? WHERE url_id=?",
                        (auth_type, None if cors is None else json.dumps(cors), invoke_mode, timestamp(self.clock),
                         current.url_id))
        return self.get_url(name, qualifier)

    def get_url(self, name: str, qualifier: str) -> FunctionUrlRecord:
        with self.db.read() as cur:
            self._require(cur, name, qualifier)
            row = cur.execute("SELECT url_id, function_name, qualifier, auth_type, cors, invoke_mode, created, modified "
                              "FROM function_urls WHERE function_name=? AND qualifier=?", (name, qualifier)).fetchone()
        if row is None:
            raise ResourceNotFoundException("The resource you requested does not exist.")
        return _url_record(row)

    def delete_url(self, name: str, qualifier: str) -> None:
        with self.db.write() as cur:
            self._require(cur, name, qualifier)
            cur.execute("DELETE FROM function_urls WHERE function_name=? AND qualifier=?", (name, qualifier))
            if not cur.rowcount:
                raise ResourceNotFoundException("The resource you requested does not exist.")

    def list_urls(self, name: str) -> list[FunctionUrlRecord]:
        with self.db.read() as cur:
            self._require(cur, name, "")
            rows = cur.execute("SELECT url_id, function_name, qualifier, auth_type, cors, invoke_mode, created, "
                               "modified FROM function_urls WHERE function_name=? ORDER BY qualifier", (name,)).fetchall()
        return [_url_record(r) for r in rows]

    def url_by_id(self, url_id: str) -> FunctionUrlRecord | None:
        with self.db.read() as cur:
            row = cur.execute("SELECT url_id, function_name, qualifier, auth_type, cors, invoke_mode, created, modified "
                              "FROM function_urls WHERE url_id=?", (url_id,)).fetchone()
        return None if row is None else _url_record(row)


def _url_record(row: tuple[Any, ...]) -> FunctionUrlRecord:
    url_id, name, qualifier, auth, cors, mode, created, modified = row
    return FunctionUrlRecord(url_id, name, qualifier, auth, None if cors is None else json.loads(cors), mode, created,
                             modified)
