"""Resource-based policies, tags and function URL configurations as service operations (async wrappers over
:class:`~edge.invocation.registry.resources.Resources`, with AWS's name and qualifier forms). One component of
:class:`~edge.invocation.service.facade.LambdaService`, which forwards these methods."""

from __future__ import annotations

import asyncio
from typing import Any

from edge.invocation.errors import InvalidParameterValueException
from edge.invocation.registry.core import Registry
from edge.invocation.registry.resources import FunctionUrlRecord, Resources
from edge.invocation.service.refs import split_name, unqualified_name

__all__ = ["ResourceOps"]


class ResourceOps:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.store = Resources(registry.db, registry.region, registry.clock)

    def _ref(self, function_name: str, qualifier: str | None) -> tuple[str, str]:
        name, q = split_name(self.registry, function_name, qualifier)
        return name, q or ""

    def _tag_target(self, resource_arn: str) -> str:
        """The function of a TagResource ARN (unqualified: tags belong to the function)."""
        prefix = f"arn:aws:lambda:{self.registry.region}:"
        if not resource_arn.startswith(prefix) or ":function:" not in resource_arn:
            raise InvalidParameterValueException(f"{resource_arn} is not a function ARN of region "
                                                 f"{self.registry.region}")
        return unqualified_name(self.registry, resource_arn)

    async def _changed(self, work: Any, *args: Any) -> Any:
        result = await asyncio.to_thread(work, *args)
        self.registry.notify_changed()
        return result

    # -- policies -----------------------------------------------------------------------------------------

    async def add_permission(self, function_name: str, qualifier: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """AddPermission: the statement added (https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html)."""
        name, q = self._ref(function_name, qualifier)
        result: dict[str, Any] = await self._changed(self.store.add_permission, name, q, params)
        return result

    async def remove_permission(self, function_name: str, qualifier: str | None, sid: str,
                                revision_id: str | None = None) -> None:
        name, q = self._ref(function_name, qualifier)
        await self._changed(self.store.remove_permission, name, q, sid, revision_id)

    async def get_policy(self, function_name: str, qualifier: str | None) -> tuple[dict[str, Any], str]:
        name, q = self._ref(function_name, qualifier)
        return await asyncio.to_thread(self.store.get_policy, name, q)

    # -- tags ---------------------------------------------------------------------------------------------

    async def tag_resource(self, resource_arn: str, tags: Any) -> None:
        await self._changed(self.store.tag, self._tag_target(resource_arn), tags)

    async def untag_resource(self, resource_arn: str, keys: list[str]) -> None:
        await self._changed(self.store.untag, self._tag_target(resource_arn), keys)

    async def list_tags(self, resource_arn: str) -> dict[str, str]:
        return await asyncio.to_thread(self.store.tags, self._tag_target(resource_arn))

    # -- function URLs ------------------------------------------------------------------------------------

    async def create_function_url_config(self, function_name: str, qualifier: str | None,
                                         params: dict[str, Any]) -> FunctionUrlRecord:
        name, q = self._ref(function_name, qualifier)
        record: FunctionUrlRecord = await self._changed(self.store.create_url, name, q, params)
        return record

    async def update_function_url_config(self, function_name: str, qualifier: str | None,
                                         params: dict[str, Any]) -> FunctionUrlRecord:
        name, q = self._ref(function_name, qualifier)
        record: FunctionUrlRecord = await self._changed(self.store.update_url, name, q, params)
        return record

    async def get_function_url_config(self, function_name: str, qualifier: str | None) -> FunctionUrlRecord:
        name, q = self._ref(function_name, qualifier)
        return await asyncio.to_thread(self.store.get_url, name, q)

    async def delete_function_url_config(self, function_name: str, qualifier: str | None) -> None:
        name, q = self._ref(function_name, qualifier)
        await self._changed(self.store.delete_url, name, q)

    async def list_function_url_configs(self, function_name: str) -> list[FunctionUrlRecord]:
        return await asyncio.to_thread(self.store.list_urls, unqualified_name(self.registry, function_name))

    async def function_url_by_id(self, url_id: str) -> FunctionUrlRecord | None:
        return await asyncio.to_thread(self.store.url_by_id, url_id)
