"""Local queues: named, durable SQS-like queues inside edgelab (tables ``queues`` and ``queue_messages``).

They are addressed with SQS-style ARNs ``arn:aws:sqs:<region>:000000000000:<name>`` and serve as destinations
(OnSuccess/OnFailure, DeadLetterConfig) and as event sources of event source mappings. Users read, purge and
delete them through the admin API / CLI.

Receiving follows SQS: a received message becomes invisible for the queue's visibility timeout, its
receive count grows, and it is deleted with its receipt handle (``<id>:<receive_count>``; a handle of an older
receive is stale). All methods block (SQLite).

Queue attributes the SQS API sets (``queue_attributes``: DelaySeconds, MessageRetentionPeriod, RedrivePolicy,
...) apply to every writer and reader of the table: a send is delayed by the queue's DelaySeconds, a receive
first drops messages past the retention period and moves those already received ``maxReceiveCount`` times
to the RedrivePolicy's dead-letter queue (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html),
for event source mappings as for API callers.
"""

from __future__ import annotations

import builtins
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from edge.invocation.errors import InvalidParameterValueException, ResourceConflictException, ResourceNotFoundException
from edge.invocation.events.model import queue_arn, valid_queue_name
from edge.invocation.registry.db import Database

__all__ = ["QueueInfo", "QueueMessage", "QueueOps"]

DEFAULT_VISIBILITY_TIMEOUT = 30.0
DEFAULT_RETENTION_S = 345_600  # SQS: 4 days


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    arn: str
    created_at: float
    visibility_timeout: float
    messages: int  # total stored
    visible: int  # receivable now
    oldest_age_s: float | None
    in_flight: int = 0  # received and not yet visible again
    delayed: int = 0  # sent with a delay that has not passed
    attributes: dict[str, Any] | None = None  # the SQS attributes set on the queue (strings), tags under "tags"
    modified_at: float | None = None


@dataclass(frozen=True, slots=True)
class QueueMessage:
    id: int
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, Any]  # SQS MessageAttributes
    sent_at: float
    receive_count: int
    first_received_at: float | None

    @property
    def md5_of_body(self) -> str:
        return hashlib.md5(self.body.encode(), usedforsecurity=False).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return {
            "MessageId": self.message_id, "ReceiptHandle": self.receipt_handle, "Body": self.body,
            "MD5OfBody": self.md5_of_body, "MessageAttributes": self.attributes,
            "Attributes": {"SentTimestamp": str(int(self.sent_at * 1000)),
                           "ApproximateReceiveCount": str(self.receive_count)},
        }  # fmt: skip


class QueueOps:
    def __init__(self, db: Database, region: str, clock: Any) -> None:
        self.db = db
        self.region = region
        self.clock = clock

    def _require(self, cur: Any, name: str) -> tuple[Any, ...]:
        row = cur.execute("SELECT name, created_at, visibility_timeout FROM queues WHERE name=?", (name,)).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"Queue not found: {queue_arn(name, self.region)}")
        return row

    def create(self, name: str, visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
               attributes: dict[str, Any] | None = None) -> QueueInfo:
        if not isinstance(name, str) or not valid_queue_name(name):
            raise InvalidParameterValueException("Queue name must be 1-80 letters, digits, '-' or '_'")
        if isinstance(visibility_timeout, bool) or not isinstance(visibility_timeout, int | float) \
                or not 0 <= visibility_timeout <= 43_200:
            raise InvalidParameterValueException("VisibilityTimeout must be a number of seconds between 0 and 43200")
        with self.db.write() as cur:
            if cur.execute("SELECT 1 FROM queues WHERE name=?", (name,)).fetchone():
                raise ResourceConflictException(f"Queue already exists: {name}")
            now = self.clock()
            cur.execute("INSERT INTO queues(name, created_at, visibility_timeout) VALUES (?,?,?)",
                        (name, now, float(visibility_timeout)))
            cur.execute("INSERT INTO queue_attributes(queue, attributes, modified_at) VALUES (?,?,?)",
                        (name, orjson.dumps(attributes or {}).decode(), now))
        return self.get(name)

    def set_attributes(self, name: str, changes: dict[str, Any], visibility_timeout: float | None = None) -> None:
        """Merge ``changes`` into the queue's attributes (a None value removes one)."""
        with self.db.write() as cur:
            self._require(cur, name)
            current = self._attributes(cur, name)
            for key, value in changes.items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value
            now = self.clock()
            cur.execute("INSERT INTO queue_attributes(queue, attributes, modified_at) VALUES (?,?,?) ON CONFLICT(queue)"
                        " DO UPDATE SET attributes=excluded.attributes, modified_at=excluded.modified_at",
                        (name, orjson.dumps(current).decode(), now))
            if visibility_timeout is not None:
                cur.execute("UPDATE queues SET visibility_timeout=? WHERE name=?", (float(visibility_timeout), name))

    @staticmethod
    def _attributes(cur: Any, name: str) -> dict[str, Any]:
        row = cur.execute("SELECT attributes FROM queue_attributes WHERE queue=?", (name,)).fetchone()
        return dict(orjson.loads(row[0])) if row else {}

    def exists(self, name: str) -> bool:
        with self.db.read() as cur:
            return cur.execute("SELECT 1 FROM queues WHERE name=?", (name,)).fetchone() is not None

    def get(self, name: str) -> QueueInfo:
        now = self.clock()
        with self.db.read() as cur:
            qname, created, vt = self._require(cur, name)
            total, visible, oldest, in_flight = cur.execute(
                "SELECT COUNT(*), SUM(visible_at<=?), MIN(sent_at), SUM(visible_at>? AND receive_count>0) "
                "FROM queue_messages WHERE queue=?", (now, now, name)
            ).fetchone()
            attributes = self._attributes(cur, name)
            row = cur.execute("SELECT modified_at FROM queue_attributes WHERE queue=?", (name,)).fetchone()
        return QueueInfo(
            name=qname,
            arn=queue_arn(qname, self.region),
            created_at=created,
            visibility_timeout=vt,
            messages=int(total),
            visible=int(visible or 0),
            oldest_age_s=None if oldest is None else round(now - oldest, 3),
            in_flight=int(in_flight or 0),
            delayed=int(total) - int(visible or 0) - int(in_flight or 0),
            attributes=attributes,
            modified_at=row[0] if row else created,
        )

    def list(self) -> list[QueueInfo]:
        with self.db.read() as cur:
            names = [r[0] for r in cur.execute("SELECT name FROM queues ORDER BY name").fetchall()]
        return [self.get(n) for n in names]

    def delete(self, name: str) -> None:
        with self.db.write() as cur:
            self._require(cur, name)
            cur.execute("DELETE FROM queues WHERE name=?", (name,))

    def purge(self, name: str) -> int:
        with self.db.write() as cur:
            self._require(cur, name)
            cur.execute("DELETE FROM queue_messages WHERE queue=?", (name,))
            return cur.rowcount

    def send(self, name: str, body: str, attributes: dict[str, Any] | None = None,
             delay_s: float | None = None) -> str:
        """SendMessage (admin API / tests); returns the MessageId."""
        return self.send_many(name, [(body, attributes, delay_s)])[0]

    def send_many(self, name: str, entries: builtins.list[tuple[str, dict[str, Any] | None, float | None]]) -> builtins.list[str]:
        """Send ``(body, message attributes, delay or None: the queue's DelaySeconds)`` entries in one
        transaction; returns their MessageIds."""
        for body, _, _ in entries:
            if not isinstance(body, str) or not body:
                raise InvalidParameterValueException("MessageBody must be a non-empty string")
            if len(body.encode()) > 1_048_576:
                raise InvalidParameterValueException("MessageBody must be at most 1 MiB")
        ids = []
        with self.db.write() as cur:
            self._require(cur, name)
            default_delay = float(self._attributes(cur, name).get("DelaySeconds", 0))
            now = self.clock()
            rows = []
            for body, attributes, delay in entries:
                mid = str(uuid.uuid4())
                ids.append(mid)
                visible = now + (default_delay if delay is None else delay)
                rows.append((name, mid, body, orjson.dumps(attributes or {}).decode(), now, visible))
            cur.executemany(
                "INSERT INTO queue_messages(queue, message_id, body, attributes, sent_at, visible_at) VALUES (?,?,?,?,?,?)",
                rows,
            )
        return ids

    def peek(self, name: str, limit: int) -> builtins.list[QueueMessage]:
        """Every stored message (visible or not), oldest first, without receiving it."""
        with self.db.read() as cur:
            self._require(cur, name)
            rows = cur.execute(
                "SELECT id, message_id, receive_count, body, attributes, sent_at, first_received_at FROM queue_messages "
                "WHERE queue=? ORDER BY id LIMIT ?", (name, limit),
            ).fetchall()
        return [_message(r) for r in rows]

    def receive(self, name: str, limit: int, visibility_timeout: float | None = None) -> builtins.list[QueueMessage]:
        """ReceiveMessage: up to ``limit`` visible messages, hidden for the visibility timeout."""
        now = self.clock()
        with self.db.read() as cur:  # idle polls must not take the database write lock
            self._require(cur, name)
            if cur.execute("SELECT 1 FROM queue_messages WHERE queue=? AND visible_at<=? LIMIT 1", (name, now)).fetchone() is None:
                return []
        with self.db.write() as cur:
            _, _, vt = self._require(cur, name)
            self._expire_and_redrive(cur, name, now)
            hide = vt if visibility_timeout is None else visibility_timeout
            rows = cur.execute(
                "UPDATE queue_messages SET visible_at=?, receive_count=receive_count+1, "
                "first_received_at=COALESCE(first_received_at, ?) WHERE id IN (SELECT id FROM queue_messages "
                "WHERE queue=? AND visible_at<=? ORDER BY id LIMIT ?) "
                "RETURNING id, message_id, receive_count, body, attributes, sent_at, first_received_at",
                (now + hide, now, name, now, limit),
            ).fetchall()
        return sorted((_message(r) for r in rows), key=lambda m: m.id)

    def _expire_and_redrive(self, cur: Any, name: str, now: float) -> None:
        """Drop messages past the retention period; move the visible ones received ``maxReceiveCount`` times to
        the RedrivePolicy's dead-letter queue (kept, and counted as received there from zero)."""
        attributes = self._attributes(cur, name)
        retention = float(attributes.get("MessageRetentionPeriod", DEFAULT_RETENTION_S))
        cur.execute("DELETE FROM queue_messages WHERE queue=? AND sent_at<?", (name, now - retention))
        policy = attributes.get("RedrivePolicy")
        if not policy:
            return
        redrive = orjson.loads(policy)
        target = str(redrive["deadLetterTargetArn"]).rsplit(":", 1)[-1]
        if target == name or cur.execute("SELECT 1 FROM queues WHERE name=?", (target,)).fetchone() is None:
            return  # SQS too leaves messages in place while the dead-letter queue does not exist
        moved = cur.execute(
            "SELECT id FROM queue_messages WHERE queue=? AND visible_at<=? AND receive_count>=?",
            (name, now, int(redrive["maxReceiveCount"])),
        ).fetchall()
        if moved:
            cur.executemany("UPDATE queue_messages SET queue=?, receive_count=0, first_received_at=NULL, visible_at=? "
                            "WHERE id=?", [(target, now, r[0]) for r in moved])

    def change_visibility(self, name: str, receipt_handle: str, timeout_s: float) -> bool:
        """ChangeMessageVisibility: the message received with ``receipt_handle`` (still in flight) becomes visible
        ``timeout_s`` from now; False when no message is in flight under that handle."""
        key = _parse_handle(receipt_handle)
        if key is None:
            return False
        now = self.clock()
        with self.db.write() as cur:
            self._require(cur, name)
            cur.execute("UPDATE queue_messages SET visible_at=? WHERE queue=? AND id=? AND receive_count=? AND "
                        "visible_at>?", (now + timeout_s, name, *key, now))
            return bool(cur.rowcount)

    @staticmethod
    def valid_handle(receipt_handle: str) -> bool:
        """Whether ``receipt_handle`` has the form of one of this store's handles."""
        return _parse_handle(receipt_handle) is not None

    def delete_messages(self, name: str, receipt_handles: builtins.list[str]) -> int:
        """Delete received messages by receipt handle; stale or unknown handles are ignored (as SQS)."""
        keys = [_parse_handle(h) for h in receipt_handles]
        with self.db.write() as cur:
            deleted = 0
            for key in keys:
                if key is not None:
                    cur.execute("DELETE FROM queue_messages WHERE queue=? AND id=? AND receive_count=?", (name, *key))
                    deleted += cur.rowcount
        return deleted

    def release(self, name: str, ids: builtins.list[int], delay_s: float) -> None:
        """Make received messages visible again after ``delay_s`` without counting that receive (throttles)."""
        at = self.clock() + delay_s
        with self.db.write() as cur:
            cur.executemany(
                "UPDATE queue_messages SET visible_at=?, receive_count=MAX(receive_count-1, 0) WHERE queue=? AND id=?",
                [(at, name, i) for i in ids],
            )

    def delete_ids(self, name: str, ids: builtins.list[int]) -> int:
        with self.db.write() as cur:
            cur.executemany("DELETE FROM queue_messages WHERE queue=? AND id=?", [(name, i) for i in ids])
            return cur.rowcount


def _message(row: tuple[Any, ...]) -> QueueMessage:
    mid_int, mid, count, body, attrs, sent, first = row
    return QueueMessage(
        id=mid_int,
        message_id=mid,
        receipt_handle=f"{mid_int}:{count}",
        body=body,
        attributes=orjson.loads(attrs),
        sent_at=sent,
        receive_count=count,
        first_received_at=first,
    )


def _parse_handle(handle: str) -> tuple[int, int] | None:
    a, sep, b = str(handle).partition(":")
    return (int(a), int(b)) if sep and a.isdigit() and b.isdigit() else None
