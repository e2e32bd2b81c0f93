"""`EmulatedShop`: the default, in-process tool backend (a wholesale food shop).

It serves the legacy business tools from a product catalogue fixture, keeps a cart, a
delivery date and a delivery address per session id, and is deterministic: no randomness
and nothing that depends on the clock, so a scenario replays identically.

Validation problems (an unknown product code, a bad date) are returned as
`{"error": "..."}` results for the model to read; the shop never raises on bad arguments.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from rapidfuzz import fuzz

from conversation_engine.core.errors import UserInputError
from conversation_engine.core.settings import project_path
from conversation_engine.tools.arguments import (
    AddToCartArguments,
    CallTransferArguments,
    ChangeDeliveryDateArguments,
    FindProductsArguments,
    RemoveFromCartArguments,
    SetCurrentLocationArguments,
    invalid_arguments,
)
from conversation_engine.tools.catalogue import (
    BUSINESS_TOOLS,
    CONTROL_TOOLS,
    strip_execution_message,
)

JsonDict = dict[str, Any]

PRODUCT_CODE = r"[A-Z]{2}-\d{8}"
PRODUCT_CODE_PATTERN = rf"\b{PRODUCT_CODE}\b"
#: Location ids the shop accepts: the customer's numbered LOCATIONS list has at most five.
MIN_LOCATION_ID = 1
MAX_LOCATION_ID = 5
#: How many products a search returns at most.
MAX_RESULTS = 5
#: Share of the query's words a product must match to be returned at all. Below it a query
#: like "kangaroo steaks" would return beef steaks because one word of two matched.
MIN_COVERAGE = 0.6


def default_catalog_path() -> Path:
    """The shipped product catalogue."""
    return project_path("fixtures") / "catalog.json"


# --------------------------------------------------------------------------- catalogue data


class PackagingType(BaseModel):
    """One way a product is sold, numbered from 1 within its product."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: int = Field(ge=1)
    name: str
    quantity_kg: float = Field(gt=0)
    """Weight of one package."""
    units: int | None = Field(default=None, ge=1)
    """Price units in one package; required for products not priced per kg."""


class Product(BaseModel):
    """One catalogue product; `price` is per `unit`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product_code: str = Field(pattern=rf"^{PRODUCT_CODE}$")
    name: str
    category: str
    brand: str
    storage: Literal["chilled", "frozen", "ambient"]
    packaging_types: tuple[PackagingType, ...] = Field(min_length=1)
    price: float = Field(gt=0)
    unit: Literal["kg", "pack", "piece"]
    aliases: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check_packaging(self) -> Product:
        numbers = [packaging.type for packaging in self.packaging_types]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"packaging types of {self.product_code} must be numbered 1..n")
        if self.unit != "kg" and any(p.units is None for p in self.packaging_types):
            raise ValueError(f"{self.product_code} is sold per {self.unit}: packaging needs units")
        return self

    def packaging(self, packaging_type: int) -> PackagingType | None:
        if 1 <= packaging_type <= len(self.packaging_types):
            return self.packaging_types[packaging_type - 1]
        return None

    def package_price(self, packaging: PackagingType) -> Decimal:
        """Price of one package: the unit price times the units (or kilograms) it holds."""
        amount = packaging.quantity_kg if self.unit == "kg" else packaging.units or 1
        return Decimal(str(self.price)) * Decimal(str(amount))


class _CatalogFile(BaseModel):
    products: tuple[Product, ...] = Field(min_length=1)


@lru_cache(maxsize=8)
def load_catalog(path: Path) -> tuple[Product, ...]:
    """The products of a catalogue file (`{"products": [...]}` or a bare list), read once."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserInputError(f"Cannot read the product catalogue {path}: {exc.strerror}.") from None
    except ValueError as exc:
        raise UserInputError(f"The product catalogue {path} is not valid JSON: {exc}.") from None
    if isinstance(data, list):
        data = {"products": data}
    try:
        products = _CatalogFile.model_validate(data).products
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UserInputError(
            f"The product catalogue {path} is invalid at {where}: {first['msg']}."
        ) from None
    codes = [product.product_code for product in products]
    if len(set(codes)) != len(codes):
        raise UserInputError(f"The product catalogue {path} repeats a product code.")
    return products


# --------------------------------------------------------------------------- search

#: Filler, quantity and packaging words: they say how much, not what.
# fmt: off
_STOPWORDS = frozenset({
    "a", "an", "the", "of", "and", "or", "with", "in", "on", "for", "to", "from", "by", "at",
    "per", "x", "about",
    "please", "i", "we", "need", "want", "would", "like", "some", "me", "my", "our", "us",
    "any", "do", "you", "have", "got", "can", "could",
    "give", "get", "buy", "order", "add", "cart", "also", "more", "just", "only", "kind",
    "type", "sort",
    "kg", "kgs", "kilo", "kilogram", "g", "gr", "gram", "l", "litre", "liter", "ml",
    "box", "pack", "packet", "package", "packaging", "piece", "pc", "pcs", "tray", "bag",
    "carton", "bottle", "crate", "case", "block", "unit",
    "maker", "brand", "product", "item",
})
# fmt: on
#: Word forms and spellings folded onto one token (after plural stripping).
_SYNONYMS = {
    "filet": "fillet",
    "minced": "mince",
    "yogurt": "yoghurt",
    "yoghourt": "yoghurt",
}
#: Words that state the storage the customer wants rather than the product.
_STORAGE_WORDS = {
    "chilled": "chilled",
    "fresh": "chilled",
    "refrigerated": "chilled",
    "frozen": "frozen",
    "freezer": "frozen",
    "deepfrozen": "frozen",
}
#: Storage words matched with typos too ("chiled", "frozn"); the rest must be exact, since
#: fuzzy matching "cooled" or "fresh" would also catch "cooked" or "french".
_FUZZY_STORAGE_WORDS = ("chilled", "frozen")
#: Storage preference in points: honour "chilled"/"frozen" without hiding the other kind.
_STORAGE_MATCH_BONUS = 4.0
_STORAGE_MISMATCH_PENALTY = 8.0
#: Category and brand words count a little less than the product's own name and aliases.
_SECONDARY_FIELD_WEIGHT = 0.9

_WORD = re.compile(r"[^\W_]+")


def _stem(word: str) -> str:
    """Strip English plural endings so "wings", "potatoes" and "fries" meet their singular."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("oes", "ches", "shes", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _similarity(query_word: str, word: str) -> float:
    """Typo-tolerant word similarity in [0, 1]; short words must match exactly.

    One edit in a three-letter word changes its meaning ("ham", "jam"); longer words
    tolerate a typo or two ("chiken", "mozarella").
    """
    if query_word == word:
        return 1.0
    shortest = min(len(query_word), len(word))
    if shortest <= 3:
        return 0.0
    cutoff = 85.0 if shortest <= 5 else 80.0
    return fuzz.ratio(query_word, word, score_cutoff=cutoff) / 100


def _storage_word(word: str) -> str | None:
    if word in _STORAGE_WORDS:
        return _STORAGE_WORDS[word]
    for known in _FUZZY_STORAGE_WORDS:
        if _similarity(word, known) > 0:
            return known
    return None


def _words(text: str) -> list[str]:
    """Normalised content words: lower-cased, singular, no numbers or filler words."""
    words: list[str] = []
    for raw in _WORD.findall(text.lower()):
        if any(char.isdigit() for char in raw):
            continue
        word = _stem(raw)
        word = _SYNONYMS.get(word, word)
        if word not in _STOPWORDS:
            words.append(word)
    return words


@dataclass(frozen=True)
class _IndexedProduct:
    product: Product
    position: int
    phrases: tuple[tuple[str, ...], ...]
    """Name and aliases, each as its content words (storage words removed)."""
    secondary: tuple[str, ...]
    """Category and brand words."""


def _content(words: list[str]) -> tuple[str, ...]:
    return tuple(word for word in words if word not in _STORAGE_WORDS)


class ProductSearch:
    """Ranks catalogue products against a free-text request.

    Every query word is matched against each product's name, aliases, category and brand,
    tolerating typos. `coverage` (how much of the query a product explains) decides
    whether the product is returned; `precision` (how much of its best name is covered)
    and rapidfuzz's token-set ratio order the survivors, so "sunflower oil" prefers the oil
    to tuna in sunflower oil; the storage the customer named adjusts the order.
    """

    def __init__(self, products: tuple[Product, ...]) -> None:
        self._by_code = {product.product_code: product for product in products}
        self._index = tuple(
            _IndexedProduct(
                product=product,
                position=position,
                phrases=tuple(
                    phrase
                    for phrase in (
                        _content(_words(text)) for text in (product.name, *product.aliases)
                    )
                    if phrase
                ),
                secondary=_content(_words(f"{product.category} {product.brand}")),
            )
            for position, product in enumerate(products)
        )

    def search(self, message: str, limit: int = MAX_RESULTS) -> list[tuple[Product, float]]:
        """The best products for `message` with scores in 0..100, best first."""
        storage_wanted: set[str] = set()
        query: list[str] = []
        for word in _words(message):
            storage = _storage_word(word)
            if storage is None:
                query.append(word)
            else:
                storage_wanted.add(storage)
        # Asking for both chilled and frozen is no preference at all.
        preferred = next(iter(storage_wanted)) if len(storage_wanted) == 1 else None

        ranked: list[tuple[float, int, Product]] = []
        # A product code in the request names the product outright.
        for code in dict.fromkeys(re.findall(PRODUCT_CODE_PATTERN, message.upper())):
            if code in self._by_code:
                ranked.append((100.0, -1, self._by_code[code]))
        if query:
            for entry in self._index:
                score = self._score(query, entry, preferred)
                if score is not None:
                    ranked.append((score, entry.position, entry.product))
        ranked.sort(key=lambda item: (-item[0], item[1]))

        results: list[tuple[Product, float]] = []
        seen: set[str] = set()
        for score, _, product in ranked:
            if product.product_code not in seen:
                seen.add(product.product_code)
                results.append((product, round(score, 1)))
        return results[:limit]

    @staticmethod
    def _score(query: list[str], entry: _IndexedProduct, preferred: str | None) -> float | None:
        matched_words: set[str] = set()
        total = 0.0
        for query_word in query:
            best = 0.0
            for phrase in entry.phrases:
                for word in phrase:
                    similarity = _similarity(query_word, word)
                    if similarity:
                        matched_words.add(word)
                    best = max(best, similarity)
            for word in entry.secondary:
                best = max(best, _SECONDARY_FIELD_WEIGHT * _similarity(query_word, word))
            total += best
        coverage = total / len(query)
        if coverage < MIN_COVERAGE:
            return None
        precision = max(
            sum(word in matched_words for word in phrase) / len(phrase) for phrase in entry.phrases
        )
        query_text = " ".join(query)
        token_set = max(fuzz.token_set_ratio(query_text, " ".join(p)) for p in entry.phrases) / 100
        score = 100 * (0.7 * coverage + 0.2 * precision + 0.1 * token_set)
        storage = entry.product.storage
        if preferred is not None and storage == preferred:
            score += _STORAGE_MATCH_BONUS
        elif preferred is not None and storage in ("chilled", "frozen"):
            score -= _STORAGE_MISMATCH_PENALTY
        return max(0.0, min(100.0, score))


# --------------------------------------------------------------------------- session state


class CartLine(BaseModel):
    """One cart line: a product in one packaging type."""

    product_code: str
    name: str
    quantity: float
    """Number of packages."""
    packaging_type: int
    packaging: str
    unit: str
    unit_price: float
    package_price: float
    line_total: float


class SessionState(BaseModel):
    """A copy of one session's shop state."""

    cart: list[CartLine] = Field(default_factory=list)
    total: float = 0.0
    delivery_date: str | None = None
    location_id: int | None = None


@dataclass
class _Session:
    # (product code, packaging type) -> packages, in the order lines were first added.
    cart: dict[tuple[str, int], Decimal] = field(default_factory=dict)
    delivery_date: str | None = None
    location_id: int | None = None


def _number(value: Decimal | float) -> float | int:
    """A JSON number: integral values as ints (2, not 2.0), money rounded to cents."""
    rounded = round(Decimal(str(value)), 3)
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)


def _money(value: Decimal) -> float:
    return float(round(value, 2))


# --------------------------------------------------------------------------- tool arguments
# The argument models live in `arguments.py`: the catalogue's schemas are generated from
# them, so what the model is offered and what the shop accepts cannot drift apart.


def _invalid(tool_name: str, exc: ValidationError) -> JsonDict:
    return {"error": invalid_arguments(tool_name, exc)}


_DATE_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --------------------------------------------------------------------------- the shop


class EmulatedShop:
    """The emulated wholesale food shop: catalogue search, per-session cart, date, address.

    One instance serves any number of concurrent sessions (asyncio tasks or threads); all
    state is keyed by session id and guarded by a lock.
    """

    SERVED_TOOLS = (*BUSINESS_TOOLS, "call_transfer")

    def __init__(self, catalog_path: Path | None = None) -> None:
        self.catalog_path = (catalog_path or default_catalog_path()).resolve()
        self._products = load_catalog(self.catalog_path)
        self._by_code = {product.product_code: product for product in self._products}
        self._search = ProductSearch(self._products)
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    # ---- ToolBackend

    def tool_schemas(self) -> dict[str, dict[str, Any]]:
        return {**BUSINESS_TOOLS, "call_transfer": CONTROL_TOOLS["call_transfer"]}

    async def call(self, tool_name: str, arguments: dict[str, Any], session_id: str) -> Any:
        """Run one tool; always a JSON-able dict, problems as `{"error": ...}`."""
        handler = {
            "rag_find_products": self._rag_find_products,
            "add_to_cart": self._add_to_cart,
            "remove_from_cart": self._remove_from_cart,
            "get_cart": self._get_cart,
            "change_delivery_date": self._change_delivery_date,
            "set_current_location": self._set_current_location,
            "call_transfer": self._call_transfer,
        }.get(tool_name)
        if handler is None:
            return {"error": f"Unknown tool '{tool_name}'"}
        return handler(strip_execution_message(dict(arguments or {})), session_id)

    # ---- accessors

    @property
    def products(self) -> tuple[Product, ...]:
        return self._products

    def product(self, product_code: str) -> Product | None:
        return self._by_code.get(product_code.strip().upper())

    def search(self, message: str, limit: int = MAX_RESULTS) -> list[tuple[Product, float]]:
        """Ranked `(product, score)` pairs for a free-text request."""
        return self._search.search(message, limit)

    def cart(self, session_id: str) -> list[CartLine]:
        with self._lock:
            session = self._sessions.get(session_id)
            return self._lines(session) if session else []

    def session_state(self, session_id: str) -> SessionState:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return SessionState()
            lines = self._lines(session)
            return SessionState(
                cart=lines,
                total=_money(sum((Decimal(str(line.line_total)) for line in lines), Decimal())),
                delivery_date=session.delivery_date,
                location_id=session.location_id,
            )

    def reset(self, session_id: str | None = None) -> None:
        """Forget one session's state, or every session's."""
        with self._lock:
            if session_id is None:
                self._sessions.clear()
            else:
                self._sessions.pop(session_id, None)

    # ---- tools

    def _rag_find_products(self, arguments: JsonDict, session_id: str) -> JsonDict:
        try:
            args = FindProductsArguments.model_validate(arguments)
        except ValidationError as exc:
            return _invalid("rag_find_products", exc)
        found = self.search(args.message)
        if not found:
            return {
                "query": args.message,
                "products": [],
                "message": f"No products found for '{args.message}'.",
            }
        return {
            "query": args.message,
            "products": [
                {
                    "product_code": product.product_code,
                    "name": product.name,
                    "storage": product.storage,
                    "packaging_types": [
                        p.model_dump(exclude_none=True) for p in product.packaging_types
                    ],
                    "price": product.price,
                    "unit": product.unit,
                    "score": score,
                }
                for product, score in found
            ],
        }

    def _add_to_cart(self, arguments: JsonDict, session_id: str) -> JsonDict:
        try:
            args = AddToCartArguments.model_validate(arguments)
        except ValidationError as exc:
            return _invalid("add_to_cart", exc)
        if not args.items:
            return {"error": "No items given; pass at least one {product_code, quantity}."}
        problems: list[str] = []
        additions: list[tuple[Product, int, Decimal]] = []
        for item in args.items:
            product = self.product(item.product_code)
            if product is None:
                problems.append(
                    f"Unknown product code '{item.product_code}'. "
                    "Use a code returned by rag_find_products."
                )
                continue
            if item.quantity <= 0:
                problems.append(
                    f"Quantity for '{product.product_code}' must be greater than 0, "
                    f"not {_number(item.quantity)}."
                )
                continue
            packaging_type = item.packaging_type if item.packaging_type is not None else 1
            if product.packaging(packaging_type) is None:
                options = ", ".join(f"{p.type} ({p.name})" for p in product.packaging_types)
                problems.append(
                    f"Packaging type {packaging_type} does not exist for "
                    f"'{product.product_code}'; available: {options}."
                )
                continue
            additions.append((product, packaging_type, Decimal(str(item.quantity))))
        if problems:
            # All or nothing: a half-applied order is harder for the model to reason about.
            return {"error": " ".join([*problems, "Nothing was added to the cart."])}

        with self._lock:
            session = self._sessions.setdefault(session_id, _Session())
            for product, packaging_type, quantity in additions:
                key = (product.product_code, packaging_type)
                session.cart[key] = session.cart.get(key, Decimal()) + quantity
            lines = self._lines(session)
        added = [
            self._line(product, packaging_type, quantity).model_dump()
            for product, packaging_type, quantity in additions
        ]
        return {"status": "added", "added": added, **self._summary(lines)}

    def _remove_from_cart(self, arguments: JsonDict, session_id: str) -> JsonDict:
        try:
            # Cart items given instead of bare codes count as their codes (see the model).
            args = RemoveFromCartArguments.model_validate(arguments)
        except ValidationError as exc:
            return _invalid("remove_from_cart", exc)
        codes = [code.strip().upper() for code in args.items]
        if not codes:
            return {"error": "No product codes given to remove."}
        with self._lock:
            session = self._sessions.setdefault(session_id, _Session())
            removed: list[str] = []
            missing: list[str] = []
            for code in dict.fromkeys(codes):
                keys = [key for key in session.cart if key[0] == code]
                for key in keys:
                    del session.cart[key]
                (removed if keys else missing).append(code)
            lines = self._lines(session)
        if not removed:
            return {"error": f"None of these products is in the cart: {', '.join(missing)}."}
        return {
            "status": "removed",
            "removed": removed,
            "not_in_cart": missing,
            **self._summary(lines),
        }

    def _get_cart(self, arguments: JsonDict, session_id: str) -> JsonDict:
        with self._lock:
            session = self._sessions.get(session_id) or _Session()
            lines = self._lines(session)
            delivery_date, location_id = session.delivery_date, session.location_id
        result: JsonDict = {
            "items": [line.model_dump() for line in lines],
            "total": self._summary(lines)["total"],
            "delivery_date": delivery_date,
            "location_id": location_id,
        }
        if not lines:
            result["message"] = "The cart is empty."
        return result

    def _change_delivery_date(self, arguments: JsonDict, session_id: str) -> JsonDict:
        try:
            args = ChangeDeliveryDateArguments.model_validate(arguments)
        except ValidationError as exc:
            return _invalid("change_delivery_date", exc)
        text = args.delivery_date.strip()
        try:
            if not _DATE_FORMAT.match(text):
                raise ValueError(text)
            parsed = date.fromisoformat(text)
        except ValueError:
            return {
                "error": f"Invalid delivery date '{args.delivery_date}'; "
                "use a real calendar date as YYYY-MM-DD."
            }
        with self._lock:
            self._sessions.setdefault(session_id, _Session()).delivery_date = parsed.isoformat()
        return {"status": "delivery_date_changed", "delivery_date": parsed.isoformat()}

    def _set_current_location(self, arguments: JsonDict, session_id: str) -> JsonDict:
        try:
            location_id = SetCurrentLocationArguments.model_validate(arguments).location_id
        except ValidationError as exc:
            if "location_id" not in arguments:
                return _invalid("set_current_location", exc)
            # Present but not a whole number: the same answer as a number out of range.
            return _invalid_location(arguments["location_id"])
        if not MIN_LOCATION_ID <= location_id <= MAX_LOCATION_ID:
            return _invalid_location(location_id)
        with self._lock:
            self._sessions.setdefault(session_id, _Session()).location_id = location_id
        return {"status": "location_set", "location_id": location_id}

    def _call_transfer(self, arguments: JsonDict, session_id: str) -> JsonDict:
        try:
            args = CallTransferArguments.model_validate(arguments)
        except ValidationError as exc:
            return _invalid("call_transfer", exc)
        return {
            "status": "transfer_requested",
            "reason": args.reason,
            "message": "The customer will be transferred to a human operator.",
        }

    # ---- helpers

    def _line(self, product: Product, packaging_type: int, quantity: Decimal) -> CartLine:
        packaging = product.packaging_types[packaging_type - 1]
        package_price = product.package_price(packaging)
        return CartLine(
            product_code=product.product_code,
            name=product.name,
            quantity=_number(quantity),
            packaging_type=packaging_type,
            packaging=packaging.name,
            unit=product.unit,
            unit_price=product.price,
            package_price=_money(package_price),
            line_total=_money(package_price * quantity),
        )

    def _lines(self, session: _Session) -> list[CartLine]:
        return [
            self._line(self._by_code[code], packaging_type, quantity)
            for (code, packaging_type), quantity in session.cart.items()
        ]

    @staticmethod
    def _summary(lines: list[CartLine]) -> JsonDict:
        """The whole cart after a change, so the model need not call get_cart to see it."""
        total = sum((Decimal(str(line.line_total)) for line in lines), Decimal())
        return {
            "cart": [line.model_dump() for line in lines],
            "items_in_cart": len(lines),
            "total": _money(total),
        }


def _invalid_location(value: Any) -> JsonDict:
    return {
        "error": f"Invalid location_id {value!r}; choose a number from "
        f"{MIN_LOCATION_ID} to {MAX_LOCATION_ID} in the customer's LOCATIONS list."
    }
