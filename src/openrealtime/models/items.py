"""Conversation items and their content parts (RealtimeConversationItem).

Items are a union on ``type``. The three message schemas of the spec (system,
user, assistant) share ``type: "message"`` and differ by ``role``; msgspec can
tag a union on one field only, so they are one :class:`MessageItem` here, and
which content part types each role accepts is checked by the engine, with the
hosted error shape.
"""

from __future__ import annotations

from typing import Any, Literal

from openrealtime.models.base import UNSET, UnsetType, Wire
from openrealtime.typing import ImageDetail, ItemStatus, Role


__all__ = [
    "ContentPart",
    "ConversationItem",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "InputAudioPart",
    "InputImagePart",
    "InputTextPart",
    "MCPApprovalRequestItem",
    "MCPApprovalResponseItem",
    "MCPCallError",
    "MCPCallItem",
    "MCPHTTPError",
    "MCPListToolsItem",
    "MCPListToolsTool",
    "MCPProtocolError",
    "MCPToolExecutionError",
    "MessageItem",
    "OutputAudioPart",
    "OutputTextPart",
]

ItemObject = Literal["realtime.item"]


# --- Content parts ---------------------------------------------------------------


class InputTextPart(Wire, tag_field="type", tag="input_text", kw_only=True):
    """Text from the user or the system."""

    text: str


class InputAudioPart(Wire, tag_field="type", tag="input_audio", kw_only=True):
    """Audio from the user (base64), with its transcript once known."""

    audio: str | UnsetType = UNSET
    transcript: str | None | UnsetType = UNSET


class InputImagePart(Wire, tag_field="type", tag="input_image", kw_only=True):
    """An image from the user, as a URL or data URL."""

    image_url: str | UnsetType = UNSET
    detail: ImageDetail | UnsetType = UNSET


class OutputTextPart(Wire, tag_field="type", tag="output_text", kw_only=True):
    """Text from the assistant."""

    text: str | UnsetType = UNSET


class OutputAudioPart(Wire, tag_field="type", tag="output_audio", kw_only=True):
    """Audio from the assistant (base64), with its transcript."""

    # ``null`` is taken (as absent) in conversation.item.create.
    audio: str | None | UnsetType = UNSET
    transcript: str | UnsetType = UNSET


ContentPart = (
    InputTextPart | InputAudioPart | InputImagePart | OutputTextPart | OutputAudioPart
)


# --- Items ---------------------------------------------------------------------------


class MessageItem(Wire, tag_field="type", tag="message", kw_only=True):
    """A message from the user, the assistant or the system."""

    id: str | UnsetType = UNSET
    object: ItemObject | UnsetType = UNSET
    status: ItemStatus | UnsetType = UNSET
    role: Role
    content: list[ContentPart]


class FunctionCallItem(Wire, tag_field="type", tag="function_call", kw_only=True):
    """A call of a function tool, made by the model."""

    id: str | UnsetType = UNSET
    object: ItemObject | UnsetType = UNSET
    status: ItemStatus | UnsetType = UNSET
    call_id: str | UnsetType = UNSET
    name: str
    arguments: str


class FunctionCallOutputItem(
    Wire, tag_field="type", tag="function_call_output", kw_only=True
):
    """The result of a function call, sent by the client."""

    id: str | UnsetType = UNSET
    object: ItemObject | UnsetType = UNSET
    status: ItemStatus | UnsetType = UNSET
    call_id: str
    output: str


class MCPApprovalResponseItem(
    Wire, tag_field="type", tag="mcp_approval_response", kw_only=True
):
    """A client's answer to an MCP approval request."""

    id: str
    approval_request_id: str
    approve: bool
    reason: str | None | UnsetType = UNSET


class MCPListToolsTool(Wire, kw_only=True):
    """One tool listed by an MCP server."""

    name: str
    description: str | None | UnsetType = UNSET
    input_schema: dict[str, Any]
    annotations: dict[str, Any] | None | UnsetType = UNSET


class MCPListToolsItem(Wire, tag_field="type", tag="mcp_list_tools", kw_only=True):
    """The tools an MCP server offers."""

    id: str | UnsetType = UNSET
    server_label: str
    tools: list[MCPListToolsTool]


class MCPProtocolError(Wire, tag_field="type", tag="protocol_error", kw_only=True):
    """An MCP protocol error."""

    code: int
    message: str


class MCPToolExecutionError(
    Wire, tag_field="type", tag="tool_execution_error", kw_only=True
):
    """An MCP tool that failed while running."""

    message: str


class MCPHTTPError(Wire, tag_field="type", tag="http_error", kw_only=True):
    """An HTTP error from an MCP server."""

    code: int
    message: str


MCPCallError = MCPProtocolError | MCPToolExecutionError | MCPHTTPError


class MCPCallItem(Wire, tag_field="type", tag="mcp_call", kw_only=True):
    """A call of an MCP tool."""

    id: str
    server_label: str
    name: str
    arguments: str
    approval_request_id: str | None | UnsetType = UNSET
    output: str | None | UnsetType = UNSET
    error: MCPCallError | None | UnsetType = UNSET


class MCPApprovalRequestItem(
    Wire, tag_field="type", tag="mcp_approval_request", kw_only=True
):
    """A request from the model to approve an MCP tool call."""

    id: str
    server_label: str
    name: str
    arguments: str


ConversationItem = (
    MessageItem
    | FunctionCallItem
    | FunctionCallOutputItem
    | MCPApprovalResponseItem
    | MCPListToolsItem
    | MCPCallItem
    | MCPApprovalRequestItem
)
