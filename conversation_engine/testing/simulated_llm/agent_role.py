"""The simulated service agent: serves the client's latest request with the tools it has.

Stateless: every reply is derived from the request alone. The agent finds the client's
latest request (`ChatView.latest_client_request`), classifies it (`utterances.parse_request`)
and looks at its own tool calls and results after it to see how far it got:

* product: `rag_find_products` → `add_to_cart` (top product code, the requested quantity,
  packaging type 1 or the first offered) → "I've added ...". No product code in the search
  result → "Sorry, we don't have ...". A tool error → an apology.
* delivery date / address: `change_delivery_date` / `set_current_location`, then a confirmation.
* cart question: `get_cart`, then a summary. Goodbye: a farewell. Anything else: a greeting.
* a business tool it does not know by name (a user's own tool, `KNOWN_TOOLS` are the
  shipped ones): called once in the conversation this agent sees, when a request has been
  served and before the agent says so, with arguments fitted to the tool's schema
  (`custom_tools`). Shipped specs offer none, so their conversations are unchanged.

A step whose tool this agent lacks goes to the offered handoff whose description best matches
the need, unless that agent already handed this very request over (no ping-pong); then the
agent says it cannot help. With no tools at all (basic mode) it answers in words only.
Handoffs to the client are never used.
"""

from __future__ import annotations

import ast
import json
import random
import re
from dataclasses import dataclass
from typing import Any

from conversation_engine.testing.simulated_llm import utterances as say
from conversation_engine.testing.simulated_llm.chat_view import ChatView, ToolCallRecord
from conversation_engine.testing.simulated_llm.custom_tools import (
    ConversationHints,
    example_arguments,
)
from conversation_engine.testing.simulated_llm.reply import Reply, call, text
from conversation_engine.testing.simulated_llm.utterances import Amount, ClientRequest
from conversation_engine.tools.catalogue import BUSINESS_TOOLS, EXECUTION_MESSAGE

PRODUCT_CODE_RE = re.compile(r"\b[A-Z]{2}-\d{8}\b")

#: The business tools the agent serves requests with by name; any other offered business
#: tool is a custom one (see `_Turn.custom_tool_due`).
KNOWN_TOOLS = frozenset(BUSINESS_TOOLS)

#: Words in a handoff description that show the target can serve a kind of request.
NEED_KEYWORDS: dict[str, tuple[str, ...]] = {
    "product": ("product", "search", "cart", "order"),
    "cart": ("cart", "product", "order"),
    "delivery": ("delivery", "date", "address", "location"),
    "address": ("delivery", "date", "address", "location"),
}


@dataclass(frozen=True)
class FoundProduct:
    """The best match of a search result."""

    code: str
    name: str | None
    packaging_type: int


def _parse_structured(raw: str) -> Any:
    """JSON, else a Python literal (AutoGen `str()`s dicts returned by tools), else None."""
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        pass
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def is_error_result(raw: str | None) -> bool:
    """Whether a tool result reports a failure (error key, "Error: ..." text, legacy fallback)."""
    if raw is None:
        return False
    parsed = _parse_structured(raw)
    if isinstance(parsed, dict):
        if parsed.get("error") or parsed.get("status") == "error":
            return True
        # The legacy HTTP tool API reports failures as {"result": "Произошла ошибка ..."}.
        result = parsed.get("result")
        return isinstance(result, str) and "ошибка" in result.lower()
    lowered = raw.strip().lower()
    return lowered.startswith("error") or lowered.startswith("ошибка")


def find_product(raw: str | None) -> FoundProduct | None:
    """The top product of a search result, by the shop's JSON or by the first product code."""
    if not raw:
        return None
    codes = PRODUCT_CODE_RE.findall(raw)
    if not codes:
        return None
    parsed = _parse_structured(raw)
    products = parsed.get("products") if isinstance(parsed, dict) else parsed
    if isinstance(products, list):
        for product in products:
            if not isinstance(product, dict):
                continue
            code = product.get("product_code") or product.get("code")
            if isinstance(code, str) and PRODUCT_CODE_RE.fullmatch(code):
                return FoundProduct(
                    code=code,
                    name=product.get("name") if isinstance(product.get("name"), str) else None,
                    packaging_type=_first_packaging(product),
                )
    return FoundProduct(code=codes[0], name=None, packaging_type=1)


def _first_packaging(product: dict[str, Any]) -> int:
    packaging = product.get("packaging_types")
    if isinstance(packaging, list) and packaging and isinstance(packaging[0], dict):
        kind = packaging[0].get("type")
        if isinstance(kind, int) and not isinstance(kind, bool):
            return kind
    return 1


def _quantity_text(quantity: object) -> str:
    """Whole quantities without a decimal point: the shop stores floats, people say 3."""
    if isinstance(quantity, float) and quantity.is_integer():
        return str(int(quantity))
    return str(quantity)


def _cart_summary(raw: str | None) -> str:
    parsed = _parse_structured(raw or "")
    items = parsed.get("items") if isinstance(parsed, dict) else None
    if isinstance(items, list):
        if not items:
            return "it is empty"
        parts = []
        for item in items:
            if isinstance(item, dict):
                name = item.get("name") or item.get("product_code") or "item"
                parts.append(f"{_quantity_text(item.get('quantity', 1))} x {name}")
        return ", ".join(parts) or "it is empty"
    summary = " ".join((raw or "").split())
    return summary[:200] or "it is empty"


class _Turn:
    """One agent decision: the request, what happened since, what this agent can do."""

    def __init__(self, view: ChatView, rng: random.Random) -> None:
        self.view = view
        self.rng = rng
        index, request_text = view.latest_client_request()
        self.request_index = index
        self.request: ClientRequest = say.parse_request(request_text)
        self.calls: list[ToolCallRecord] = view.tool_calls_after(index) if index is not None else []
        self.notices = view.handoff_notices_after(index) if index is not None else []
        self.basic_mode = not view.tools

    def last_call(self, name: str) -> ToolCallRecord | None:
        for record in reversed(self.calls):
            if record.name == name:
                return record
        return None

    def use(self, name: str, wanted: dict[str, Any]) -> Reply:
        return call(self.view.parameters(name), name, wanted)

    def handed_over_by(self, agent: str) -> bool:
        """True when `agent` (or, in the legacy view, some agent) passed this request here."""
        return any(notice.from_agent in (None, agent) for notice in self.notices)

    def lacking(self, need: str, fallback: str) -> Reply:
        """The tool for `need` is missing: hand off to an agent that has it, or say so."""
        if self.basic_mode:
            return text(fallback)
        if any(self.view.handoff_tools().get(record.name) for record in self.calls):
            # Asked again after handing this request over (legacy follow-up completion).
            return text(say.HANDED_OVER_TEMPLATE)
        keywords = NEED_KEYWORDS[need]
        best: tuple[int, str, str] | None = None
        for tool_name, target in self.view.handoff_tools().items():
            description = str(self.view.tools[tool_name].get("description", "")).lower()
            hits = sum(description.count(word) for word in keywords)
            if hits and (best is None or hits > best[0]):
                best = (hits, tool_name, target)
        if best is None or self.handed_over_by(best[2]):
            return text(say.CANNOT_HELP_TEMPLATE)
        _, tool_name, target = best
        reason = f"The customer needs help with: {need}."
        return call(
            self.view.parameters(tool_name),
            tool_name,
            {"reason": reason, "context": f"Customer request: {self._request_summary()}"},
        )

    def _request_summary(self) -> str:
        request = self.request
        if request.amount is not None:
            return request.amount.describe()
        if request.date is not None:
            return f"delivery date {request.date}"
        if request.location_id is not None:
            return f"address number {request.location_id}"
        return request.kind

    # --- per request kind ------------------------------------------------------------------

    def product(self, amount: Amount) -> Reply:
        added = self.last_call("add_to_cart")
        searched = self.last_call("rag_find_products")
        if added is not None:
            if is_error_result(added.result):
                return text(say.TOOL_ERROR_TEMPLATE.format(action="add that to your cart"))
            name = self._found_name(searched)
            return text(say.pick(say.ADDED_TEMPLATES, self.rng, amount=amount.describe(name)))
        if searched is not None:
            if is_error_result(searched.result):
                return text(say.TOOL_ERROR_TEMPLATE.format(action="search the catalogue"))
            found = find_product(searched.result)
            if found is None:
                return text(say.NOT_FOUND_TEMPLATE.format(item=amount.item))
            if self.view.offers("add_to_cart"):
                return self.use("add_to_cart", {"items": [self._cart_item(found, amount)]})
            return self.lacking(
                "cart",
                say.PRODUCT_FOUND_TEMPLATE.format(name=found.name or amount.item, code=found.code),
            )
        if self.view.offers("rag_find_products"):
            return self.use("rag_find_products", {"message": amount.item})
        return self.lacking("product", say.NOTED_TEMPLATE.format(amount=amount.describe()))

    def _found_name(self, searched: ToolCallRecord | None) -> str | None:
        found = find_product(searched.result) if searched is not None else None
        return found.name if found is not None else None

    def _cart_item(self, found: FoundProduct, amount: Amount) -> dict[str, Any]:
        item = {
            "product_code": found.code,
            "quantity": amount.quantity_value,
            "packaging_type": found.packaging_type,
        }
        # Keep only the item fields this variant of add_to_cart declares.
        items_schema = self.view.parameters("add_to_cart").get("properties", {}).get("items", {})
        declared = (items_schema.get("items") or {}).get("properties")
        if isinstance(declared, dict):
            item = {key: value for key, value in item.items() if key in declared}
        return item

    def delivery(self, date: str) -> Reply:
        done = self.last_call("change_delivery_date")
        if done is not None:
            if is_error_result(done.result):
                return text(say.TOOL_ERROR_TEMPLATE.format(action="change the delivery date"))
            return text(say.DELIVERY_DONE_TEMPLATE.format(date=date))
        if self.view.offers("change_delivery_date"):
            return self.use("change_delivery_date", {"delivery_date": date})
        return self.lacking("delivery", say.DELIVERY_NOTED_TEMPLATE.format(date=date))

    def address(self, number: int) -> Reply:
        done = self.last_call("set_current_location")
        if done is not None:
            if is_error_result(done.result):
                return text(say.TOOL_ERROR_TEMPLATE.format(action="change the address"))
            return text(say.ADDRESS_DONE_TEMPLATE.format(number=number))
        if self.view.offers("set_current_location"):
            return self.use("set_current_location", {"location_id": number})
        return self.lacking("address", say.ADDRESS_NOTED_TEMPLATE.format(number=number))

    def cart(self) -> Reply:
        done = self.last_call("get_cart")
        if done is not None:
            if is_error_result(done.result):
                return text(say.TOOL_ERROR_TEMPLATE.format(action="open your cart"))
            return text(say.CART_TEMPLATE.format(summary=_cart_summary(done.result)))
        if self.view.offers("get_cart"):
            return self.use("get_cart", {})
        return self.lacking("cart", say.CANNOT_HELP_TEMPLATE)

    # --- tools it does not know by name --------------------------------------------------

    def custom_tool_due(self) -> str | None:
        """The first offered custom tool this agent has not called in the conversation."""
        called = self.view.called_tool_names()
        for name in self.view.business_tools():
            if name not in KNOWN_TOOLS and name not in called:
                return name
        return None

    def use_custom(self, name: str) -> Reply:
        """Call `name` with a value for each required argument of its schema."""
        wanted = example_arguments(self.view.parameters(name), self._hints())
        wanted.pop(EXECUTION_MESSAGE, None)  # `call` says the usual "One moment, please."
        return self.use(name, wanted)

    def _hints(self) -> ConversationHints:
        request, amount = self.request, self.request.amount
        product_code = None
        for record in reversed(self.view.tool_calls_after(-1)):
            found = find_product(record.result)
            if found is not None:
                product_code = found.code
                break
        _, request_text = self.view.latest_client_request()
        return ConversationHints(
            request_text=request_text,
            item=amount.item if amount is not None else None,
            quantity=amount.quantity_value if amount is not None else None,
            date=request.date,
            location_id=request.location_id,
            product_code=product_code,
        )

    # --- the reply -----------------------------------------------------------------------

    def reply(self) -> Reply:
        served = self.serve()
        if served.tool_call is None and not self.basic_mode and self.request_index is not None:
            # The request is served (or cannot be): a custom tool not called yet runs now,
            # and the same words follow once its result is back.
            custom = self.custom_tool_due()
            if custom is not None:
                return self.use_custom(custom)
        return served

    def serve(self) -> Reply:
        """The reply that serves the client's latest request with the shop's tools."""
        request = self.request
        if request.kind == "product" and request.amount is not None:
            return self.product(request.amount)
        if request.kind == "delivery" and request.date is not None:
            return self.delivery(request.date)
        if request.kind == "address" and request.location_id is not None:
            return self.address(request.location_id)
        if request.kind == "cart":
            return self.cart()
        if request.kind == "goodbye":
            return text(say.pick(say.FAREWELL_TEMPLATES, self.rng))
        return text(say.pick(say.GREETING_TEMPLATES, self.rng))


def agent_reply(view: ChatView, rng: random.Random) -> Reply:
    """The agent's next message for this request."""
    return _Turn(view, rng).reply()
