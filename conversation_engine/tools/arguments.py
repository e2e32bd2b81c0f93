"""The tools' argument models: the one source of their schemas and of their validation.

`catalogue.py` generates the JSON schema the model is offered from each model (the legacy
argument names and types, section 3 of the legacy reference), and the emulated shop
validates the model's arguments with the same models. A field's `description` is the
argument's description in the schema.

A few `mode="before"` validators accept spellings models produce besides the schema's
(a digit string for an integer, a cart item for a product code); they widen what is
accepted, never what the schema offers, so arguments valid under the schema always pass.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ToolArguments(BaseModel):
    """Base of every argument model."""

    # Models add stray arguments; ignoring them beats failing the call.
    model_config = ConfigDict(extra="ignore")


def invalid_arguments(tool_name: str, exc: ValidationError) -> str:
    """The sentence the model reads when its arguments do not fit a tool's model."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: {error['msg']}"
        for error in exc.errors()
    )
    return f"Invalid arguments for {tool_name}: {problems}."


# --------------------------------------------------------------------------- business tools


class FindProductsArguments(ToolArguments):
    message: str = Field(
        description="Free-text description of the product: kind, cut, brand, chilled or "
        "frozen, packaging."
    )


class CartItem(ToolArguments):
    product_code: str = Field(description="Product code from rag_find_products.")
    quantity: float = Field(description="How many units.")
    packaging_type: int | None = Field(
        default=None, description="Packaging option number; 1 if there is only one."
    )


class AddToCartArguments(ToolArguments):
    items: list[CartItem]


class RemoveFromCartArguments(ToolArguments):
    items: list[str] = Field(description="Product codes.")

    @field_validator("items", mode="before")
    @classmethod
    def _codes_of_cart_items(cls, value: Any) -> Any:
        # Models sometimes pass cart items ({"product_code": ..., "quantity": ...}) instead
        # of bare codes; an item's code is what it means.
        if not isinstance(value, list):
            return value
        return [
            item["product_code"] if isinstance(item, dict) and "product_code" in item else item
            for item in value
        ]


class GetCartArguments(ToolArguments):
    pass


class ChangeDeliveryDateArguments(ToolArguments):
    delivery_date: str = Field(description="New date, YYYY-MM-DD.")


class SetCurrentLocationArguments(ToolArguments):
    location_id: int = Field(
        description="Number of the address in the customer's LOCATIONS list; 1 by default."
    )

    @field_validator("location_id", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> int:
        number = location_number(value)
        if number is None:
            raise ValueError("not a whole number")
        return number


def location_number(value: Any) -> int | None:
    """An integer location id from an int, an integral float or a digit string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


# --------------------------------------------------------------------------- control tools


class EndCallArguments(ToolArguments):
    reason: str = Field(description="Reason for ending the call")


class CallTransferArguments(ToolArguments):
    reason: str = Field(description="Why a human is needed.")


class HandoffArguments(ToolArguments):
    reason: str = Field(description="Why the conversation is transferred.")
    context: str | None = Field(default=None, description="What the next agent should know.")
