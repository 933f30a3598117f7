"""The Amazon SQS API subset for edgelab's local queues: JSON protocol (``X-Amz-Target: AmazonSQS.<Operation>``,
``application/x-amz-json-1.0``, what botocore >= 1.31 and the AWS CLI in the test extras speak) and the query
protocol (form bodies with ``Action=...``, XML answers) for older clients.

https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/Welcome.html — CreateQueue, GetQueueUrl,
ListQueues, SendMessage, SendMessageBatch, ReceiveMessage (visibility timeout, long polling up to 20 s: the
handler waits on the event loop, woken by sends through this API and re-checking the table every 100 ms for
messages other writers added: the async deliverer's DLQ and destination messages), DeleteMessage(Batch),
ChangeMessageVisibility(Batch), GetQueueAttributes, SetQueueAttributes, PurgeQueue (one per 60 s, as AWS),
DeleteQueue, ListDeadLetterSourceQueues. Errors carry SQS's JSON ``__type`` and the classic code in
``x-amzn-query-error`` (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-api-responses.html).

The queues are the ones the async deliverer fills (DLQs, destinations) and event source mappings read: one
table, one set of semantics (receipt handles, receive counts, visibility). ``RedrivePolicy`` moves a message
that was received ``maxReceiveCount`` times to its dead-letter queue at the next receive (event source
mappings included), as SQS does. Queue URLs are ``http://<control host:port>/000000000000/<name>``.

Not supported (a clear error, not a silent ignore): FIFO queues, ``Policy`` / KMS attributes, message moves.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
import struct
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from edge.control.aws_json.dispatch import AwsError, Call, JsonService, member_int, member_str
from edge.invocation import LambdaService
from edge.invocation.errors import LambdaError
from edge.invocation.models import ACCOUNT_ID, QueueInfo, QueueMessage

__all__ = ["SqsApi"]

TARGET_PREFIX = "AmazonSQS"
MAX_BATCH = 10
MAX_WAIT_S = 20
PURGE_INTERVAL_S = 60.0
MAX_MESSAGE_BYTES = 1_048_576  # SQS's MaximumMessageSize limit (1 MiB since August 2025)

# error code -> the classic (query) code botocore reports as Error.Code
_QUERY_CODES = {
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "QueueNameExists": "QueueAlreadyExists",
    "MessageNotInflight": "AWS.SimpleQueueService.MessageNotInflight",
    "PurgeQueueInProgress": "AWS.SimpleQueueService.PurgeQueueInProgress",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "InvalidBatchEntryId": "AWS.SimpleQueueService.InvalidBatchEntryId",
    "BatchRequestTooLong": "AWS.SimpleQueueService.BatchRequestTooLong",
    "UnsupportedOperation": "AWS.SimpleQueueService.UnsupportedOperation",
    "InvalidParameterValueException": "InvalidParameterValue",
}


def _err(code: str, message: str) -> AwsError:
    return AwsError(code, message, query_code=_QUERY_CODES.get(code, code))


def _invalid(message: str) -> AwsError:
    return _err("InvalidParameterValueException", message)


# -- queue attributes ------------------------------------------------------------------------------------

# settable attribute -> (low, high) for the numeric ones; RedrivePolicy is JSON
_NUMERIC = {
    "DelaySeconds": (0, 900),
    "MaximumMessageSize": (1024, MAX_MESSAGE_BYTES),
    "MessageRetentionPeriod": (60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, MAX_WAIT_S),
    "VisibilityTimeout": (0, 43_200),
}
_UNSUPPORTED = {"Policy", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled",
                "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
                "RedriveAllowPolicy"}
_READ_ONLY = {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
              "ApproximateNumberOfMessagesDelayed", "CreatedTimestamp", "LastModifiedTimestamp", "QueueArn"}
_ALL_READABLE = (*_READ_ONLY, *_NUMERIC, "RedrivePolicy", "SqsManagedSseEnabled")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def _check_attributes(raw: Any, region: str) -> dict[str, str]:
    """Validated settable attributes (values as strings, as SQS keeps them)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _invalid("Attributes must be a map of attribute names to string values.")
    out: dict[str, str] = {}
    for name, value in raw.items():
        text = str(value)
        if name in _NUMERIC:
            low, high = _NUMERIC[name]
            if not text.isdigit() or not low <= int(text) <= high:
                raise _err("InvalidAttributeValue", f"Invalid value for the parameter {name}: it must be an integer "
                                                    f"between {low} and {high}.")
            out[name] = str(int(text))
        elif name == "RedrivePolicy":
            out[name] = _check_redrive(text, region)
        elif name in _UNSUPPORTED:
            what = "FIFO queues" if name in ("FifoQueue", "ContentBasedDeduplication", "DeduplicationScope",
                                              "FifoThroughputLimit") else f"the {name} attribute"
            raise _err("InvalidAttributeName", f"{what} are not supported by edgelab's local queues; create a "
                                               "standard queue without it." if what.endswith("queues") else
                       f"{what} is not supported by edgelab's local queues (no IAM or KMS here); leave it out.")
        else:
            raise _err("InvalidAttributeName", f"Unknown Attribute {name}.")
    return out


def _check_redrive(text: str, region: str) -> str:
    try:
        policy = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _err("InvalidAttributeValue", "Invalid value for the parameter RedrivePolicy: not JSON.") from None
    if not isinstance(policy, dict):
        raise _err("InvalidAttributeValue", "Invalid value for the parameter RedrivePolicy: expected a JSON object.")
    target, count = policy.get("deadLetterTargetArn"), policy.get("maxReceiveCount")
    prefix = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:"
    if not isinstance(target, str) or not target.startswith(prefix):
        raise _err("InvalidAttributeValue", f"Value {target} for parameter RedrivePolicy is invalid. Reason: "
                                            f"deadLetterTargetArn must be a queue ARN {prefix}NAME.")
    try:
        n = int(str(count))
    except ValueError:
        n = 0
    if not 1 <= n <= 1000:
        raise _err("InvalidAttributeValue", "Value for parameter RedrivePolicy is invalid. Reason: maxReceiveCount "
                                            "must be an integer between 1 and 1000.")
    return orjson.dumps({"deadLetterTargetArn": target, "maxReceiveCount": n}).decode()


# -- message attributes -----------------------------------------------------------------------------------


def _check_message_attributes(raw: Any) -> tuple[dict[str, Any], int]:
    """(attributes, their size in bytes) of SendMessage's MessageAttributes (at most 10)."""
    if raw is None:
        return {}, 0
    if not isinstance(raw, dict) or len(raw) > 10:
        raise _invalid("MessageAttributes must be a map of at most 10 attributes.")
    size = 0
    out: dict[str, Any] = {}
    for name, attr in raw.items():
        if not isinstance(attr, dict) or not isinstance(attr.get("DataType"), str):
            raise _invalid(f"The message attribute '{name}' must contain a DataType.")
        dtype = attr["DataType"]
        base = dtype.split(".", 1)[0]
        if base in ("String", "Number"):
            value = attr.get("StringValue")
            if not isinstance(value, str) or value == "":
                raise _invalid(f"The message attribute '{name}' with type '{base}' must use field 'String'.")
            if base == "Number":
                try:
                    float(value)
                except ValueError:
                    raise _invalid(f"Can't cast the value of message (user) attribute '{name}' to a number.") from None
            size += len(value.encode())
            out[name] = {"DataType": dtype, "StringValue": value}
        elif base == "Binary":
            value = attr.get("BinaryValue")
            try:
                data = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
            except (binascii.Error, ValueError):
                data = b""
            if not data:
                raise _invalid(f"The message attribute '{name}' with type 'Binary' must use field 'Binary'.")
            size += len(data)
            out[name] = {"DataType": dtype, "BinaryValue": value}
        else:
            raise _invalid(f"The type of message (user) attribute '{name}' is invalid. You must use only the "
                           "following supported type prefixes: Binary, Number, String.")
        size += len(name.encode()) + len(dtype.encode())
    return out, size


def md5_of_attributes(attributes: Mapping[str, Any]) -> str:
    """MD5OfMessageAttributes: over the attributes sorted by name, each as length-prefixed name, length-prefixed
    data type, a transport byte (1 string, 2 binary) and the length-prefixed value
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html#sqs-attributes-md5-message-digest-calculation)."""
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        attr = attributes[name]
        for part in (name.encode(), str(attr["DataType"]).encode()):
            digest.update(struct.pack(">I", len(part)) + part)
        if "BinaryValue" in attr:
            data = base64.b64decode(attr["BinaryValue"])
            digest.update(b"\x02" + struct.pack(">I", len(data)) + data)
        else:
            data = str(attr["StringValue"]).encode()
            digest.update(b"\x01" + struct.pack(">I", len(data)) + data)
    return digest.hexdigest()


_VALID_BODY = re.compile("^[\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")


def _check_body(body: Any) -> str:
    if not isinstance(body, str) or body == "":
        raise _invalid("The request must contain the parameter MessageBody.")
    if not _VALID_BODY.match(body):
        raise _err("InvalidMessageContents", "Invalid characters found. Valid unicode characters are #x9 | #xA | "
                                             "#xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
    return body


def _wanted(names: Any, available: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``available`` that ``names`` (All, .*, names, prefix.*) asks for."""
    if not isinstance(names, list) or not names:
        return {}
    if "All" in names or ".*" in names:
        return dict(available)
    return {name: value for name, value in available.items()
            if name in names or any(n.endswith(".*") and name.startswith(n[:-1]) for n in names if isinstance(n, str))}


class SqsApi:
    """The operations over ``service``'s local queues (see the module docstring)."""

    def __init__(self, service: LambdaService, *, poll_interval_s: float = 0.1) -> None:
        self.service = service
        self.poll_interval_s = poll_interval_s
        self._wake: dict[str, asyncio.Event] = {}
        self._purged_at: dict[str, float] = {}

    def json_service(self) -> JsonService:
        ops = {
            "CreateQueue": self.create_queue, "GetQueueUrl": self.get_queue_url, "ListQueues": self.list_queues,
            "DeleteQueue": self.delete_queue, "PurgeQueue": self.purge_queue,
            "GetQueueAttributes": self.get_queue_attributes, "SetQueueAttributes": self.set_queue_attributes,
            "SendMessage": self.send_message, "SendMessageBatch": self.send_message_batch,
            "ReceiveMessage": self.receive_message, "DeleteMessage": self.delete_message,
            "DeleteMessageBatch": self.delete_message_batch,
            "ChangeMessageVisibility": self.change_message_visibility,
            "ChangeMessageVisibilityBatch": self.change_message_visibility_batch,
            "ListDeadLetterSourceQueues": self.list_dead_letter_source_queues,
            "ListQueueTags": self.list_queue_tags, "TagQueue": self.tag_queue, "UntagQueue": self.untag_queue,
        }
        return JsonService(TARGET_PREFIX, "1.0", ops, type_prefix="com.amazonaws.sqs#", query_compatible=True)

    async def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except LambdaError as exc:
            if exc.code == "ResourceNotFoundException":
                raise _err("QueueDoesNotExist", "The specified queue does not exist.") from None
            raise _invalid(exc.message) from None

    @staticmethod
    def _url(call: Call, name: str) -> str:
        return f"{call.request.scheme}://{call.request.host}/{ACCOUNT_ID}/{name}"

    @staticmethod
    def _name(body: Mapping[str, Any]) -> str:
        """The queue name of ``QueueUrl`` (``http://host:port/000000000000/NAME``; a bare name is accepted)."""
        url = member_str(body, "QueueUrl", code="InvalidAddress")
        if not url:
            raise _invalid("Value for parameter QueueUrl is invalid. Reason: it is required.")
        parts = [p for p in urlsplit(url).path.split("/") if p] if "/" in url else [url]
        if len(parts) == 2 and parts[0] != ACCOUNT_ID:
            raise _err("QueueDoesNotExist", f"The specified queue does not exist (account {parts[0]}: edgelab's "
                                            f"account is {ACCOUNT_ID}).")
        if not parts or len(parts) > 2 or not _QUEUE_NAME.match(parts[-1]):
            raise _err("InvalidAddress", f"The address {url} is not valid for this endpoint.")
        return parts[-1]

    def _wake_event(self, name: str) -> asyncio.Event:
        event = self._wake.get(name)
        if event is None:
            event = self._wake[name] = asyncio.Event()
        return event

    # -- queues --------------------------------------------------------------------------------------------

    async def create_queue(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = member_str(body, "QueueName", required=True, code="InvalidParameterValueException") or ""
        if name.endswith(".fifo"):
            raise _invalid("FIFO queues are not supported by edgelab's local queues; create a standard queue.")
        if not _QUEUE_NAME.match(name):
            raise _invalid("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
        attributes = _check_attributes(body.get("Attributes"), call.region)
        tags = body.get("tags") or {}
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise _invalid("tags must be a map of strings.")
        queues = self.service.queues
        if await asyncio.to_thread(queues.exists, name):
            info: QueueInfo = await self._run(queues.get, name)
            current = self._attribute_values(info, call.region)
            for key, value in attributes.items():
                if current.get(key) != value:
                    raise _err("QueueNameExists", f"A queue already exists with the same name and a different value "
                                                  f"for attribute {key}")
            return {"QueueUrl": self._url(call, name)}
        vt = float(attributes.pop("VisibilityTimeout", 30))
        stored: dict[str, Any] = {**attributes, "tags": tags} if tags else dict(attributes)
        await self._run(queues.create, name, vt, stored)
        return {"QueueUrl": self._url(call, name)}

    async def get_queue_url(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = member_str(body, "QueueName", required=True, code="InvalidParameterValueException") or ""
        owner = member_str(body, "QueueOwnerAWSAccountId")
        if (owner and owner != ACCOUNT_ID) or not await asyncio.to_thread(self.service.queues.exists, name):
            raise _err("QueueDoesNotExist", "The specified queue does not exist.")
        return {"QueueUrl": self._url(call, name)}

    async def list_queues(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        prefix = member_str(body, "QueueNamePrefix") or ""
        limit = member_int(body, "MaxResults", 1, 1000, code="InvalidParameterValueException")
        after = member_str(body, "NextToken")
        infos: list[QueueInfo] = await self._run(self.service.queues.list)
        names = [q.name for q in infos if q.name.startswith(prefix) and (after is None or q.name > after)]
        out: dict[str, Any] = {}
        page = names[:limit] if limit else names[:1000]
        if page:
            out["QueueUrls"] = [self._url(call, n) for n in page]
        if limit and len(names) > limit:
            out["NextToken"] = page[-1]
        return out

    async def delete_queue(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        await self._run(self.service.queues.delete, name)
        self._wake.pop(name, None)
        return {}

    async def purge_queue(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        now = time.monotonic()
        last = self._purged_at.get(name)
        if last is not None and now - last < PURGE_INTERVAL_S:
            raise _err("PurgeQueueInProgress", f"Only one PurgeQueue operation on {name} is allowed every 60 seconds.")
        await self._run(self.service.queues.purge, name)
        self._purged_at[name] = now
        return {}

    def _attribute_values(self, info: QueueInfo, region: str) -> dict[str, str]:
        stored = dict(info.attributes or {})
        stored.pop("tags", None)
        return {
            "QueueArn": info.arn,
            "ApproximateNumberOfMessages": str(info.visible),
            "ApproximateNumberOfMessagesNotVisible": str(info.in_flight),
            "ApproximateNumberOfMessagesDelayed": str(info.delayed),
            "CreatedTimestamp": str(int(info.created_at)),
            "LastModifiedTimestamp": str(int(info.modified_at or info.created_at)),
            "VisibilityTimeout": str(int(info.visibility_timeout)),
            "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
            "MessageRetentionPeriod": "345600",
            "DelaySeconds": "0",
            "ReceiveMessageWaitTimeSeconds": "0",
            "SqsManagedSseEnabled": "false",
            **{k: str(v) for k, v in stored.items()},
        }

    async def get_queue_attributes(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        names = body.get("AttributeNames") or []
        if not isinstance(names, list):
            raise _invalid("AttributeNames must be a list.")
        for n in names:
            if n != "All" and n not in _ALL_READABLE and n not in _UNSUPPORTED:
                raise _err("InvalidAttributeName", f"Unknown Attribute {n}.")
        info: QueueInfo = await self._run(self.service.queues.get, name)
        values = self._attribute_values(info, call.region)
        chosen = values if "All" in names else {n: values[n] for n in names if n in values}
        return {"Attributes": chosen} if chosen else {}

    async def set_queue_attributes(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        attributes = _check_attributes(body.get("Attributes"), call.region)
        vt = attributes.pop("VisibilityTimeout", None)
        await self._run(self.service.queues.set_attributes, name, attributes, None if vt is None else float(vt))
        return {}

    async def list_dead_letter_source_queues(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        infos: list[QueueInfo] = await self._run(self.service.queues.list)
        if not any(q.name == name for q in infos):
            raise _err("QueueDoesNotExist", "The specified queue does not exist.")
        arn = next(q.arn for q in infos if q.name == name)
        sources = [q.name for q in infos if (q.attributes or {}).get("RedrivePolicy")
                   and orjson.loads((q.attributes or {})["RedrivePolicy"])["deadLetterTargetArn"] == arn]
        return {"queueUrls": [self._url(call, n) for n in sources]}

    async def list_queue_tags(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        info: QueueInfo = await self._run(self.service.queues.get, self._name(body))
        tags = (info.attributes or {}).get("tags") or {}
        return {"Tags": tags} if tags else {}

    async def tag_queue(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        tags = body.get("Tags")
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise _invalid("Tags must be a map of strings.")
        info: QueueInfo = await self._run(self.service.queues.get, name)
        merged = {**((info.attributes or {}).get("tags") or {}), **tags}
        await self._run(self.service.queues.set_attributes, name, {"tags": merged})
        return {}

    async def untag_queue(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        keys = body.get("TagKeys") or []
        info: QueueInfo = await self._run(self.service.queues.get, name)
        left = {k: v for k, v in ((info.attributes or {}).get("tags") or {}).items() if k not in keys}
        await self._run(self.service.queues.set_attributes, name, {"tags": left or None})
        return {}

    # -- messages ------------------------------------------------------------------------------------------

    async def _limits(self, name: str) -> dict[str, str]:
        info: QueueInfo = await self._run(self.service.queues.get, name)
        return {k: str(v) for k, v in (info.attributes or {}).items() if k != "tags"}

    @staticmethod
    def _entry(entry: Mapping[str, Any], max_size: int) -> tuple[str, dict[str, Any], float | None, dict[str, str]]:
        """(body, attributes, delay, result fields) of one SendMessage(Batch) entry, validated."""
        body = _check_body(entry.get("MessageBody"))
        attributes, attr_size = _check_message_attributes(entry.get("MessageAttributes"))
        if len(body.encode()) + attr_size > max_size:
            raise _invalid(f"One or more parameters are invalid. Reason: Message must be shorter than {max_size} bytes.")
        delay = member_int(entry, "DelaySeconds", 0, 900, code="InvalidParameterValueException")
        result = {"MD5OfMessageBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()}
        if attributes:
            result["MD5OfMessageAttributes"] = md5_of_attributes(attributes)
        return body, attributes, None if delay is None else float(delay), result

    async def send_message(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        limits = await self._limits(name)
        text, attributes, delay, result = self._entry(body, int(limits.get("MaximumMessageSize", MAX_MESSAGE_BYTES)))
        [mid] = await self._run(self.service.queues.send_many, name, [(text, attributes, delay)])
        self._wake_event(name).set()
        return {**result, "MessageId": mid}

    async def send_message_batch(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        entries = _batch_entries(body)
        limits = await self._limits(name)
        max_size = int(limits.get("MaximumMessageSize", MAX_MESSAGE_BYTES))
        total = sum(len(str(e.get("MessageBody", "")).encode()) for e in entries)
        if total > MAX_MESSAGE_BYTES:
            raise _err("BatchRequestTooLong", f"Batch requests cannot be longer than {MAX_MESSAGE_BYTES} bytes.")
        ok: list[tuple[str, tuple[str, dict[str, Any], float | None], dict[str, str]]] = []
        failed = []
        for entry in entries:
            try:
                text, attributes, delay, result = self._entry(entry, max_size)
            except AwsError as err:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": err.query_code or err.code,
                               "Message": err.message})
                continue
            ok.append((entry["Id"], (text, attributes, delay), result))
        ids = await self._run(self.service.queues.send_many, name, [m for _, m, _ in ok]) if ok else []
        if ok:
            self._wake_event(name).set()
        out: dict[str, Any] = {"Successful": [{"Id": eid, "MessageId": mid, **result}
                                              for (eid, _, result), mid in zip(ok, ids, strict=True)]}
        out["Failed"] = failed
        return out

    async def receive_message(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        limit = member_int(body, "MaxNumberOfMessages", 1, MAX_BATCH, code="InvalidParameterValueException",
                           default=1) or 1
        vt = member_int(body, "VisibilityTimeout", 0, 43_200, code="InvalidParameterValueException")
        limits = await self._limits(name)
        wait = member_int(body, "WaitTimeSeconds", 0, MAX_WAIT_S, code="InvalidParameterValueException")
        wait_s = float(limits.get("ReceiveMessageWaitTimeSeconds", 0) if wait is None else wait)
        queues = self.service.queues
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        wake = self._wake_event(name)
        while True:
            wake.clear()
            messages: list[QueueMessage] = await self._run(queues.receive, name, limit,
                                                           None if vt is None else float(vt))
            left = deadline - loop.time()
            if messages or left <= 0:
                break
            try:  # long polling: woken by a send through this API, else re-checked for other writers
                async with asyncio.timeout(min(left, self.poll_interval_s)):
                    await wake.wait()
            except TimeoutError:
                pass
        system = body.get("MessageSystemAttributeNames") or body.get("AttributeNames")
        wanted_attrs = body.get("MessageAttributeNames")
        if not messages:
            return {}
        return {"Messages": [_message_shape(m, system, wanted_attrs) for m in messages]}

    async def delete_message(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        handle = member_str(body, "ReceiptHandle", required=True, code="InvalidParameterValueException") or ""
        if not self.service.queues.valid_handle(handle):
            raise _err("ReceiptHandleIsInvalid", f'The input receipt handle "{handle}" is not a valid receipt handle.')
        await self._run(self.service.queues.delete_messages, name, [handle])  # a stale handle deletes nothing (SQS)
        return {}

    async def delete_message_batch(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        entries = _batch_entries(body)
        ok, failed = [], []
        for entry in entries:
            handle = str(entry.get("ReceiptHandle") or "")
            if self.service.queues.valid_handle(handle):
                ok.append((entry["Id"], handle))
            else:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid",
                               "Message": f'The input receipt handle "{handle}" is not a valid receipt handle.'})
        if ok:
            await self._run(self.service.queues.delete_messages, name, [h for _, h in ok])
        return {"Successful": [{"Id": i} for i, _ in ok], "Failed": failed}

    async def _change(self, name: str, handle: str, timeout: int) -> None:
        if not self.service.queues.valid_handle(handle):
            raise _err("ReceiptHandleIsInvalid", f'The input receipt handle "{handle}" is not a valid receipt handle.')
        if not await self._run(self.service.queues.change_visibility, name, handle, float(timeout)):
            raise _err("MessageNotInflight", "The message referred to isn't in flight.")
        if timeout == 0:
            self._wake_event(name).set()

    async def change_message_visibility(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        handle = member_str(body, "ReceiptHandle", required=True, code="InvalidParameterValueException") or ""
        timeout = member_int(body, "VisibilityTimeout", 0, 43_200, code="InvalidParameterValueException")
        if timeout is None:
            raise _invalid("The request must contain the parameter VisibilityTimeout.")
        await self._change(name, handle, timeout)
        return {}

    async def change_message_visibility_batch(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        ok, failed = [], []
        for entry in _batch_entries(body):
            try:
                timeout = member_int(entry, "VisibilityTimeout", 0, 43_200, code="InvalidParameterValueException") or 0
                await self._change(name, str(entry.get("ReceiptHandle") or ""), timeout)
            except AwsError as err:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": err.query_code or err.code,
                               "Message": err.message})
                continue
            ok.append({"Id": entry["Id"]})
        return {"Successful": ok, "Failed": failed}


def _batch_entries(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    entries = body.get("Entries")
    if not isinstance(entries, list) or not entries:
        raise _err("EmptyBatchRequest", "There should be at least one entry in the request.")
    if len(entries) > MAX_BATCH:
        raise _err("TooManyEntriesInBatchRequest", f"Maximum number of entries per request are {MAX_BATCH}. "
                                                   f"You have sent {len(entries)}.")
    ids = [e.get("Id") if isinstance(e, dict) else None for e in entries]
    for i in ids:
        if not isinstance(i, str) or not _BATCH_ID.match(i):
            raise _err("InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, hyphens "
                                              "and underscores. It can be at most 80 letters long.")
    if len(set(ids)) != len(ids):
        raise _err("BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id.")
    return entries


def _message_shape(m: QueueMessage, system: Any, wanted: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"MessageId": m.message_id, "ReceiptHandle": m.receipt_handle, "MD5OfBody": m.md5_of_body,
                           "Body": m.body}
    available = {
        "SenderId": ACCOUNT_ID,
        "SentTimestamp": str(int(m.sent_at * 1000)),
        "ApproximateReceiveCount": str(m.receive_count),
        "ApproximateFirstReceiveTimestamp": str(int((m.first_received_at or m.sent_at) * 1000)),
    }
    attrs = _wanted(system, available)
    if attrs:
        out["Attributes"] = attrs
    user = _wanted(wanted, m.attributes)
    if user:
        out["MessageAttributes"] = user
        out["MD5OfMessageAttributes"] = md5_of_attributes(user)
    return out
