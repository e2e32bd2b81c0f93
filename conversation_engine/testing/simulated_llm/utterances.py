"""The fixed phrases both simulated roles speak, and the parser that reads them back.

The simulated client and agent never share state; they understand each other only because
the client speaks in these templates and the agent parses them (tolerant of small variations,
so a human-written line like "can i have 3 packs of butter please" works too). Each template
has a few phrasings; the request's seed picks one.

Client requests:

* product: "I'd like to order 2 boxes of chilled chicken fillet." (and variants)
* delivery date: "Could you change my delivery date to 2024-01-18?"
* address: "Please deliver to my address number 2."
* goodbye: "That's everything, thank you. Goodbye!"

Agent replies that the client counts as a failure contain one of `FAILURE_MARKERS`
("Sorry, we don't have ...", "... I cannot help with that ...", "... I couldn't ...").
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

# --- client phrases ------------------------------------------------------------------------

ITEM_REQUEST_TEMPLATES = (
    "I'd like to order {item}.",
    "Could I get {item}, please?",
    "I need {item}.",
    "Please add {item} to my order.",
)
DELIVERY_REQUEST_TEMPLATES = (
    "Could you change my delivery date to {date}?",
    "Please move my delivery date to {date}.",
)
ADDRESS_REQUEST_TEMPLATES = (
    "Please deliver to my address number {number}.",
    "Could you send the order to my address number {number}?",
)
CART_QUESTION_TEMPLATES = ("What's in my cart right now?",)
GOODBYE_TEMPLATES = (
    "That's everything, thank you. Goodbye!",
    "That's all I need, thank you. Goodbye!",
)
OUT_OF_PATIENCE_TEMPLATES = (
    "This is taking too long. Goodbye.",
    "I'll order somewhere else. Goodbye.",
)
#: Lower-case text showing the client gave up (its end-call reason and sentences above).
GAVE_UP_MARKERS = ("out of patience", "taking too long", "order somewhere else")
GENERIC_QUESTION_TEMPLATES = (
    "Hello, what kind of products do you sell?",
    "Hi, could you tell me what you have in stock?",
)
GENERIC_FAREWELL_TEMPLATES = ("Thank you, that's all for now. Goodbye!",)

# --- agent phrases -------------------------------------------------------------------------

GREETING_TEMPLATES = (
    "Hello! You've reached the shop. How can I help you today?",
    "Good day! You've reached the shop. How can I help you today?",
)
ADDED_TEMPLATES = (
    "I've added {amount} to your cart. Anything else?",
    "Done, I've put {amount} in your cart. Anything else?",
)
NOT_FOUND_TEMPLATE = "Sorry, we don't have {item}. Anything else?"
TOOL_ERROR_TEMPLATE = "Sorry, something went wrong and I couldn't {action}. Anything else?"
CANNOT_HELP_TEMPLATE = "Sorry, I cannot help with that. Anything else?"
HANDED_OVER_TEMPLATE = "A colleague of mine will take it from here."
DELIVERY_DONE_TEMPLATE = "Done, your delivery date is now {date}. Anything else?"
ADDRESS_DONE_TEMPLATE = "Done, we'll deliver to your address number {number}. Anything else?"
CART_TEMPLATE = "Your cart: {summary}. Anything else?"
FAREWELL_TEMPLATES = (
    "Thank you for your order. Goodbye!",
    "Thank you, have a nice day. Goodbye!",
)
NOTED_TEMPLATE = "We have that, I've noted {amount}. Anything else?"
DELIVERY_NOTED_TEMPLATE = "Noted, we'll deliver on {date}. Anything else?"
ADDRESS_NOTED_TEMPLATE = "Noted, we'll deliver to your address number {number}. Anything else?"
PRODUCT_FOUND_TEMPLATE = "We have {name} ({code}). Anything else?"

#: Lower-case substrings of agent replies that tell the client a request failed.
FAILURE_MARKERS = (
    "sorry, we don't have",
    "cannot help",
    "can't help",
    "couldn't",
    "could not",
)


def pick(templates: tuple[str, ...], rng: random.Random, **values: object) -> str:
    """One phrasing chosen by the request's seed, filled in."""
    return rng.choice(templates).format(**values)


def is_failure(agent_text: str) -> bool:
    text = agent_text.lower()
    return any(marker in text for marker in FAILURE_MARKERS)


# --- parsing -------------------------------------------------------------------------------

RequestKind = Literal["product", "delivery", "address", "cart", "goodbye", "other"]

_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "a dozen": 12,
}
_QUANTITY = r"\d+(?:[.,]\d+)?|a dozen|" + "|".join(w for w in _NUMBER_WORDS if w != "a dozen")
_AMOUNT_RE = re.compile(
    rf"^(?P<qty>{_QUANTITY})\s+(?:(?P<unit>[a-z]+)\s+of\s+)?(?P<item>.+)$", re.IGNORECASE
)
_DATE_RE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_ADDRESS_RE = re.compile(
    r"\b(?:address|location)\s*(?:number|no\.?|#|nr\.?)?\s*(\d+)\b", re.IGNORECASE
)
_CART_RE = re.compile(
    r"\b(?:what(?:'s| is) in my (?:cart|basket)|show (?:me )?my (?:cart|basket)"
    r"|what(?:'s| is| have i got) (?:in )?(?:the|my) (?:cart|basket))",
    re.IGNORECASE,
)
_ORDER_RE = re.compile(
    r"\b(?:i'?d like to order|i would like to order|i'?d like|i would like"
    r"|could i (?:get|have|order)|can i (?:get|have|order)|may i have"
    r"|i (?:also )?need|i want|please add|add|order|i'?ll take|get me)\s+(?P<spec>.+)",
    re.IGNORECASE,
)
_SPEC_TAIL_RE = re.compile(
    r"(?:,?\s*(?:to|into|in) (?:my|the) (?:order|cart|basket))?(?:,?\s*please)?[\s.!?]*$",
    re.IGNORECASE,
)
_GOODBYE_RE = re.compile(
    r"\b(?:goodbye|bye|that'?s (?:all|everything)|nothing else|no,? thanks?)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Amount:
    """A shopping-list line split up: "2 boxes of chicken fillet" → 2, "boxes", "chicken fillet"."""

    quantity: float
    unit: str | None
    item: str

    @property
    def quantity_value(self) -> int | float:
        """The quantity as an int when it is whole (what `add_to_cart` receives)."""
        return int(self.quantity) if self.quantity == int(self.quantity) else self.quantity

    def describe(self, name: str | None = None) -> str:
        """Quantity, unit and name as said aloud: `2 boxes of <name>` or `2 x <name>`.

        The requested item text stands in when the search gave no product name.
        """
        what = name or self.item
        quantity = self.quantity_value
        return f"{quantity} {self.unit} of {what}" if self.unit else f"{quantity} x {what}"


def parse_amount(text: str) -> Amount:
    """Split a product phrase into quantity, unit and item; quantity 1 when none is given."""
    phrase = " ".join(text.strip().split())
    match = _AMOUNT_RE.match(phrase)
    if not match:
        return Amount(quantity=1, unit=None, item=phrase)
    raw = match.group("qty").lower()
    quantity = float(_NUMBER_WORDS[raw]) if raw in _NUMBER_WORDS else float(raw.replace(",", "."))
    unit = match.group("unit")
    return Amount(quantity=quantity, unit=unit.lower() if unit else None, item=match["item"])


@dataclass(frozen=True)
class ClientRequest:
    """What the client asked for in one message."""

    kind: RequestKind
    amount: Amount | None = None
    date: str | None = None
    location_id: int | None = None


def parse_request(text: str) -> ClientRequest:
    """Classify a client message; checks go from the most specific pattern to the least."""
    clean = " ".join(text.strip().split())
    if date := _DATE_RE.search(clean):
        return ClientRequest(kind="delivery", date=date.group(1))
    if address := _ADDRESS_RE.search(clean):
        return ClientRequest(kind="address", location_id=int(address.group(1)))
    if _CART_RE.search(clean):
        return ClientRequest(kind="cart")
    if order := _ORDER_RE.search(clean):
        spec = _SPEC_TAIL_RE.sub("", order.group("spec")).strip(" ,.")
        if spec:
            return ClientRequest(kind="product", amount=parse_amount(spec))
    if _GOODBYE_RE.search(clean):
        return ClientRequest(kind="goodbye")
    return ClientRequest(kind="other")
